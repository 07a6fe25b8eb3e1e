"""Per-unit durations in mel frames from a CTC forced alignment of an utterance's characters.

The aligner itself (the suite's CTC ASR and ``torchaudio.functional.forced_align``) lives in
``scripts/tts_align.py``, since a family may not import another; this file turns its output, the frame span
``[start, end)`` of every transcript character on the best CTC path, into what the duration and acoustic models
read: one non-negative integer per unit of ``speech.tts.units.char_units`` (a silence unit, the characters, a
silence unit), summing exactly to ``MelSpec.frames(num_samples)``.

How silence maps: CTC marks each character with a short spike and fills the rest with blanks, so
- the blank frames between two characters are split at their midpoint, half to each: the spike says where a
  character is, not whether it starts or ends there, and the midpoint assumes neither;
- the frames before the first spike go to the leading silence unit and those after the last spike to the
  trailing one;
- with the utterance's frame energies, silence belongs to the silence units (the edges and the spaces between
  words): the edges become exactly the leading and trailing quiet stretch, and a pause at a word boundary goes to
  the space rather than half of it to the last letter before it (``assign_silence``);
- every character keeps at least one mel frame (taken from its neighbours), so the acoustic model sees it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import Tensor

from speech.tts.units import EDGE
from speech.vocoder.mel import MelSpec

Span = tuple[int, int]
MEL = MelSpec()
"""The suite's TTS mel frames (16 ms)."""
FRAME_OFFSET = 1.0
"""ASR frames by which a CTC boundary precedes its sample position. The conformer's stride-2 convolutions centre
frame ``t`` on sample ``t * frame_samples``, which puts its start half a frame earlier (0.5); CTC spikes also lag
the sound a little, and on the corpus's dev rows the spectral change at inner unit boundaries is largest at 1.0
(1.083 times that of shuffled boundaries, against 1.057 at 0.5 and 1.023 at 0)."""


def unit_boundaries(spans: Sequence[Span], num_frames: int) -> list[float]:
    """Boundaries [N + 1] in ASR frames of the N = len(spans) + 2 units (silence, characters, silence)."""
    if not spans:
        raise ValueError("no characters to place")
    inner = [(e + s) / 2 for (_, e), (s, _) in itertools.pairwise(spans)]
    return [0.0, float(spans[0][0]), *inner, float(spans[-1][1]), float(num_frames)]


def to_mel(bounds: Sequence[float], frame_samples: int, num_samples: int, spec: MelSpec = MEL,
           frame_offset: float = FRAME_OFFSET) -> list[int]:
    """ASR-frame boundaries to mel-frame boundaries: 0 first, ``spec.frames(num_samples)`` last, never decreasing.

    ASR frame boundary ``b`` lies at sample ``(b - frame_offset) * frame_samples``; a unit gets the mel frames
    whose centres (``j * hop``) fall inside its samples.
    """
    total = spec.frames(num_samples)
    out = [0]
    for b in bounds[1:-1]:
        sample = min(max((b - frame_offset) * frame_samples, 0.0), float(num_samples))
        out.append(min(max(math.ceil(sample / spec.hop), out[-1]), total))
    return [*out, total]


def assign_silence(cum: list[int], silent: Sequence[bool], energy: Sequence[float], silence_below: float
                   ) -> list[int]:
    """Boundaries moved so that the silence units (``silent``: the edges and the spaces) hold the quiet frames.

    A character's quiet frames next to a silence unit join it (the character keeps at least one frame); the edge
    units also give their loud frames to the first / last character, so they hold exactly the audio's leading and
    trailing quiet stretch. ``energy`` holds one level per mel frame (mean natural-log mel magnitude); frames
    within ``silence_below`` of the loudest are sound.
    """
    n = len(silent)
    if len(cum) != n + 1 or n < 3 or not len(energy):
        return cum
    thr = max(energy) - silence_below
    quiet = [e < thr for e in energy] + [False]  # a sentinel past the end
    out = list(cum)
    loud = [j for j, q in enumerate(quiet[:-1]) if not q]
    # The edges first: leading silence up to the onset, trailing from the offset, within the neighbouring character.
    if loud:
        out[1] = max(min(loud[0], out[2] - 1), 0)
        out[-2] = min(max(loud[-1] + 1, out[-3] + 1), out[-1])
    for k in range(1, n - 1):
        if silent[k] or not (silent[k - 1] or silent[k + 1]):
            continue
        lo, hi = out[k], out[k + 1]  # character k, next to a silence unit
        if silent[k - 1]:
            while lo < hi - 1 and quiet[lo]:
                lo += 1
        if silent[k + 1]:
            while hi > lo + 1 and quiet[hi - 1]:
                hi -= 1
        out[k], out[k + 1] = lo, hi
    return out


def enforce_min(cum: list[int], minimum: Sequence[int]) -> list[int]:
    """Boundaries with unit ``k`` at least ``minimum[k]`` frames long, moving as little as a two-pass sweep can.

    ``ValueError`` when the frames can't hold the minimums.
    """
    total, n = cum[-1], len(minimum)
    if len(cum) != n + 1:
        raise ValueError(f"{len(cum)} boundaries for {n} units")
    if sum(minimum) > total:
        raise ValueError(f"{sum(minimum)} units need a frame each but the audio has {total} mel frames")
    out = list(cum)
    for k in range(1, n):  # forward: push boundaries right where a unit is too short
        out[k] = max(out[k], out[k - 1] + minimum[k - 1])
    for k in range(n - 1, 0, -1):  # backward: pull them back where that overran the end
        out[k] = min(out[k], out[k + 1] - minimum[k])
    return out


def durations(cum: Sequence[int]) -> list[int]:
    """Unit lengths from boundaries."""
    return [b - a for a, b in itertools.pairwise(cum)]


def align_durations(units: Sequence[str], spans: Sequence[Span], num_frames: int, frame_samples: int,
                    num_samples: int, energy: Sequence[float] | None = None, silence_below: float = 5.0,
                    spec: MelSpec = MEL, frame_offset: float = FRAME_OFFSET) -> list[int]:
    """Mel-frame durations of ``units`` (silence, characters, silence) from the characters' CTC ``spans``.

    Args:
        spans: frame span of each of ``units[1:-1]`` on the CTC path.
        num_frames: ASR frames of the utterance (the emission length).
        frame_samples: audio samples per ASR frame.
        energy: per-mel-frame levels (``spec.frames(num_samples)`` of them) to place the silences; None keeps
            the spikes' edges.
    """
    if len(spans) != len(units) - 2:
        raise ValueError(f"{len(spans)} spans for {len(units) - 2} characters")
    silent = [True, *(u == EDGE for u in units[1:-1]), True]
    cum = to_mel(unit_boundaries(spans, num_frames), frame_samples, num_samples, spec, frame_offset)
    if energy is not None:
        cum = assign_silence(cum, silent, energy, silence_below)
    return durations(enforce_min(cum, [0 if s else 1 for s in silent]))


def path_score(logp: Tensor, spans: Sequence[Span], ids: Sequence[int], blank: int = 0) -> float:
    """Mean per-frame log-probability of the forced CTC path [T, V]: characters on their spans, blank elsewhere."""
    labels = torch.full((logp.shape[0],), blank, dtype=torch.long)
    for (s, e), i in zip(spans, ids):
        labels[s:e] = i
    picked = logp.detach().float().cpu().gather(1, labels[:, None])[:, 0]  # [T]
    return float(picked.clamp_min(-1e4).mean())


def frame_energy(mel: Tensor) -> list[float]:
    """Per-frame level of a log-mel [T, n_mels]: the mean natural-log magnitude."""
    return mel.float().mean(-1).tolist()
