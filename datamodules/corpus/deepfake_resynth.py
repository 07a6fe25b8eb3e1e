"""Vocoder resynthesis sources: speech re-made by the WORLD vocoder or by Griffin-Lim from its log-mel.

Both keep what was said and who said it (the input voice is the clip's speaker) and replace the waveform generator,
which is what a source tracer must notice. WORLD can also move the pitch and the formants, as voice-conversion
front-ends do.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from speech.audio import SAMPLE_RATE


def world_resynth(wave: np.ndarray, semitones: float = 0.0, formant_warp: float = 1.0,
                  sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """WORLD analysis (DIO + StoneMask F0, CheapTrick envelope, D4C aperiodicity) and synthesis.

    Args:
        semitones: pitch shift applied to the F0 track.
        formant_warp: > 1 moves formants up (a shorter vocal tract), < 1 down; 1 keeps the envelope.
    """
    import pyworld

    x = wave.astype(np.float64)
    f0, t = pyworld.dio(x, sample_rate, frame_period=5.0)
    f0 = pyworld.stonemask(x, f0, t, sample_rate)
    sp = pyworld.cheaptrick(x, f0, t, sample_rate)
    ap = pyworld.d4c(x, f0, t, sample_rate)
    if formant_warp != 1.0:
        bins = np.arange(sp.shape[1], dtype=np.float64)
        # The envelope at frequency f comes from f / warp: formants move by the factor ``warp``.
        src = np.clip(bins / formant_warp, 0, sp.shape[1] - 1)
        sp = np.stack([np.interp(src, bins, frame) for frame in sp])
    f0 = f0 * 2.0 ** (semitones / 12.0)
    y = pyworld.synthesize(f0, sp, ap, sample_rate, frame_period=5.0)
    return y[: len(wave)].astype(np.float32)


@functools.cache
def _griffin_lim() -> tuple[Any, Any]:
    # One vocoder per worker process: building the filterbank's pseudo-inverse is the slow part.
    import torch

    from speech.vocoder.griffin_lim import GriffinLimVocoder
    from speech.vocoder.mel import LogMelSpectrogram, MelSpec

    torch.set_num_threads(1)
    spec = MelSpec(sample_rate=SAMPLE_RATE)
    return LogMelSpectrogram(spec).eval(), GriffinLimVocoder(spec, n_iter=32).eval()


def griffinlim_resynth(wave: np.ndarray, seed: int = 0) -> np.ndarray:
    """The log-mel of ``wave`` turned back into a waveform by Griffin-Lim (the phase is rebuilt, not kept)."""
    import torch

    mel_fn, vocoder = _griffin_lim()
    torch.manual_seed(seed)
    with torch.no_grad():
        mel = mel_fn(torch.from_numpy(wave.astype(np.float32))[None])  # [1, T, n_mels]
        y = vocoder(mel)[0]  # [(T - 1) * hop]
    return y.numpy().astype(np.float32)
