"""Speaker similarity of generated speech, reported against a ceiling and a floor measured in the same run.

Voicebox-style (Le et al., 2023): the cosine between the embeddings of a voice prompt and of speech generated from it
means little alone, since every encoder has its own scale. So each trial also scores the prompt against another
recording of the same speaker (the ceiling: what a perfect clone would reach) and against a different speaker (the
floor), and the report gives the share of the floor-to-ceiling gap that generation covers, over all trials and per
speaker. Everything but ``speaker_similarity`` works on embeddings, so it tests without audio.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from speech.speaker.model import SpeakerEncoder, Waves


def cosine(a: Tensor, b: Tensor) -> Tensor:
    """Row-wise cosine of two [N, D] (or [D]) embedding sets: [N] (or a scalar)."""
    return (F.normalize(a.float(), dim=-1) * F.normalize(b.float(), dim=-1)).sum(-1)


def speaker_similarity(encoder: SpeakerEncoder, wave_a: Waves, wave_b: Waves, sample_rate: int = 16_000) -> Tensor:
    """Cosine of the speaker embeddings of two waves (a float tensor), or row by row of two equal-sized batches."""
    a, b = encoder.embed(wave_a, sample_rate), encoder.embed(wave_b, sample_rate)
    if a.shape != b.shape:
        raise ValueError(f"speaker_similarity: {a.shape[0]} waves against {b.shape[0]}; give as many on each side")
    sim = cosine(a, b)
    return sim[0] if sim.numel() == 1 else sim


@dataclass
class SimilarityReport:
    """Mean cosine to the prompt of generated speech, ceiling and floor, and the share of the gap reached."""

    generated: float
    """Mean cosine prompt <-> generated speech."""
    ceiling: float
    """Mean cosine prompt <-> another recording of the same speaker."""
    floor: float
    """Mean cosine prompt <-> a recording of a different speaker."""
    gap_fraction: float
    """``(generated - floor) / (ceiling - floor)``: 1 is as close as a real recording, 0 no closer than a stranger."""
    trials: int
    """Prompts scored."""
    per_speaker: dict[str, float] = field(default_factory=dict)
    """Gap fraction of each speaker's trials (against that speaker's own ceiling and floor; NaN where the ceiling
    is not above the floor)."""
    spread: float = 0.0
    """Standard deviation of ``per_speaker`` over speakers."""
    worst: float = 0.0
    """Lowest ``per_speaker`` value."""

    def as_dict(self) -> dict[str, Any]:
        return {"generated": self.generated, "ceiling": self.ceiling, "floor": self.floor,
                "gap_fraction": self.gap_fraction, "trials": self.trials, "spread": self.spread,
                "worst": self.worst, "per_speaker": dict(self.per_speaker)}

    def summary(self) -> str:
        """One line for logs and tables."""
        return (f"speaker similarity {self.generated:.3f} (ceiling {self.ceiling:.3f}, floor {self.floor:.3f}): "
                f"{100 * self.gap_fraction:.1f}% of the gap, per speaker sd {100 * self.spread:.1f} points, "
                f"worst {100 * self.worst:.1f}% ({len(self.per_speaker)} speakers, {self.trials} prompts)")


def gap_fraction(generated: float, ceiling: float, floor: float) -> float:
    """Where ``generated`` sits between ``floor`` (0) and ``ceiling`` (1); may leave [0, 1]."""
    if not ceiling > floor:
        raise ValueError(f"the ceiling ({ceiling:.4f}) must lie above the floor ({floor:.4f}): the speaker encoder "
                         "does not tell these speakers apart, so the figure would mean nothing")
    return (generated - floor) / (ceiling - floor)


def similarity_report(prompt: Tensor, generated: Tensor, same: Tensor, other: Tensor,
                      speakers: Sequence[str]) -> SimilarityReport:
    """The report for N trials, each row one prompt of speaker ``speakers[i]`` (all [N, D] embeddings).

    Args:
        prompt: the voice prompts.
        generated: speech generated from each prompt.
        same: another recording of the prompt's speaker (not the prompt itself).
        other: a recording of a different speaker.
    """
    n = len(speakers)
    for name, x in (("prompt", prompt), ("generated", generated), ("same", same), ("other", other)):
        if x.ndim != 2 or x.shape[0] != n or x.shape != prompt.shape:
            raise ValueError(f"{name}: expected [{n}, D] embeddings like prompt {tuple(prompt.shape)}, "
                             f"got {tuple(x.shape)}")
    if n == 0:
        raise ValueError("no trials to report")
    gen, ceil, flo = cosine(prompt, generated), cosine(prompt, same), cosine(prompt, other)  # [N] each
    per: dict[str, float] = {}
    for spk in sorted(set(speakers)):
        idx = torch.tensor([i for i, s in enumerate(speakers) if s == spk])
        c, f = float(ceil[idx].mean()), float(flo[idx].mean())
        # One speaker whose recordings sound no closer than a stranger's has no gap to cover: NaN, not an abort.
        per[spk] = gap_fraction(float(gen[idx].mean()), c, f) if c > f else math.nan
    values = np.array([v for v in per.values() if not math.isnan(v)])
    return SimilarityReport(
        generated=float(gen.mean()), ceiling=float(ceil.mean()), floor=float(flo.mean()),
        gap_fraction=gap_fraction(float(gen.mean()), float(ceil.mean()), float(flo.mean())), trials=n,
        per_speaker=per, spread=float(values.std()) if len(values) > 1 else 0.0,
        worst=float(values.min()) if len(values) else math.nan)


@dataclass(frozen=True)
class ReferenceTrial:
    """One prompt and its two references, as indices into the rows they were picked from."""

    speaker: str
    """The prompt's speaker."""
    prompt: int
    """The voice prompt (and the text to generate comes from elsewhere)."""
    same: int
    """Another recording of the same speaker: the ceiling."""
    other: int
    """A recording of a different speaker, in the prompt's language where there is one: the floor."""


def reference_trials(rows: Sequence[Mapping[str, Any]], per_speaker: int = 1, seed: int = 0) -> list[ReferenceTrial]:
    """Prompts with their ceiling and floor recordings from manifest rows (``speaker``, optionally ``lang``).

    Every speaker with at least two recordings gives up to ``per_speaker`` prompts, each with a different recording
    of the same speaker and one of another speaker; fixed by ``seed``, so every system is scored on the same trials.
    """
    rng = random.Random(seed)
    by_speaker: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_speaker.setdefault(str(row["speaker"]), []).append(i)
    trials = []
    for spk in sorted(by_speaker):
        mine = by_speaker[spk]
        if len(mine) < 2:
            continue
        lang = rows[mine[0]].get("lang")
        strangers = [i for i, r in enumerate(rows) if r["speaker"] != spk and r.get("lang") == lang] or \
            [i for i, r in enumerate(rows) if r["speaker"] != spk]
        if not strangers:
            raise ValueError(f"only one speaker ({spk}) in the rows: no floor to measure against")
        for prompt in rng.sample(mine, min(per_speaker, len(mine))):
            same = rng.choice([i for i in mine if i != prompt])
            trials.append(ReferenceTrial(spk, prompt, same, rng.choice(strangers)))
    return trials
