"""Voice-source and prosody augmentation: pseudo-whisper, breathiness, tempo and pitch shift.

Generic signal processing on the training waveform, no voice synthesis: LPC analysis keeps each frame's spectral
envelope (the vocal tract) and swaps the excitation for noise, which removes voicing and pitch the way a whisper
does; a phase vocoder changes tempo without touching pitch, and resampling after it changes pitch without touching
tempo. All STFT-based and vectorised over frames, so a few milliseconds per utterance in a DataLoader worker.
"""

from __future__ import annotations

import numpy as np
import soxr
import torch
import torchaudio.functional as AF

from speech.audio import SAMPLE_RATE

N_FFT = 512
HOP = 128


def _check(wave: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(wave, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"{what}: expected a mono waveform [samples], got shape {list(x.shape)}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what}: the waveform holds NaN or infinite samples")
    return x


def _stft(x: np.ndarray) -> torch.Tensor:
    w = torch.hann_window(N_FFT)
    return torch.stft(torch.from_numpy(x), N_FFT, HOP, window=w, center=True, return_complex=True)  # [F, T]


def _istft(spec: torch.Tensor, n: int) -> np.ndarray:
    w = torch.hann_window(N_FFT)
    return torch.istft(spec, N_FFT, HOP, window=w, center=True, length=n).numpy().astype(np.float32)


def lpc_envelope(power: np.ndarray, order: int) -> np.ndarray:
    """LPC spectral envelopes ``g / |A(e^jw)|`` (amplitude) of frames given as power spectra [F, T].

    Autocorrelation from the power spectrum, then Levinson-Durbin run on all frames at once.
    """
    r = np.fft.irfft(power, axis=0)[: order + 1].T.astype(np.float64)  # [T, order+1]
    r[:, 0] *= 1.0 + 1e-6  # white-noise correction keeps the recursion stable
    t = r.shape[0]
    a = np.zeros((t, order + 1))
    a[:, 0] = 1.0
    err = r[:, 0].copy() + 1e-12
    for i in range(1, order + 1):
        # Reflection coefficients [T], kept inside (-1, 1): rounding on near-silent frames can push them out.
        k = np.clip(-(a[:, :i] * r[:, i:0:-1]).sum(1) / err, -0.9999, 0.9999)
        a[:, 1 : i + 1] = a[:, 1 : i + 1] + k[:, None] * a[:, i - 1 :: -1][:, :i]
        err = err * (1.0 - k * k) + 1e-12
    n_fft = 2 * (power.shape[0] - 1)
    inv = np.abs(np.fft.rfft(a, n_fft, axis=1)).T  # |A(e^jw)| [F, T]
    # err is the prediction error power of the frame's (n_fft-normalised) autocorrelation: the envelope's gain.
    return (np.sqrt(err * n_fft)[None, :] / np.maximum(inv, 1e-8)).astype(np.float32)


def noise_excited(wave: np.ndarray, rng: np.random.Generator, order: int = 18) -> np.ndarray:
    """The utterance re-synthesised from its LPC envelopes with white-noise excitation (no voicing, no pitch)."""
    x = _check(wave, "noise_excited")
    if len(x) < N_FFT:
        return x.copy()
    spec = _stft(x)
    env = lpc_envelope((spec.abs() ** 2).numpy(), order)  # [F, T]
    noise = _stft(rng.standard_normal(len(x)).astype(np.float32))
    # White noise's STFT has expected power sum(window**2) per bin; divide it out so the frame power follows env.
    scale = float((torch.hann_window(N_FFT) ** 2).sum().sqrt())
    out = _istft(noise * torch.from_numpy(env) / scale, len(x))
    # Match the input level (the noise spectrum's frame powers wander around the envelope's).
    level = float(np.sqrt(np.mean(out.astype(np.float64) ** 2)))
    target = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
    return out * np.float32(target / level) if level > 0 else out


def pseudo_whisper(wave: np.ndarray, rng: np.random.Generator, order: int = 18, tilt: float = 0.0) -> np.ndarray:
    """Whisper-like speech: LPC envelope over noise, then an optional pre-emphasis ``tilt`` in [0, 1).

    Whispered speech has no glottal pulses and relatively less low-frequency energy; the tilt models the latter.
    """
    out = noise_excited(wave, rng, order)
    if tilt > 0.0:
        emph = np.append(out[:1], out[1:] - np.float32(tilt) * out[:-1])
        out = emph * np.float32(np.sqrt(np.mean(out**2) / max(float(np.mean(emph**2)), 1e-20)))
    return out.astype(np.float32)


def breathy(wave: np.ndarray, rng: np.random.Generator, ratio: float, order: int = 18) -> np.ndarray:
    """Mix the utterance with its noise-excited version: ``ratio`` is the noise part's share of the level (0-1)."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"breathy: ratio={ratio} must be in [0, 1]")
    x = _check(wave, "breathy")
    return ((1.0 - ratio) * x + ratio * noise_excited(x, rng, order)).astype(np.float32)


def time_stretch(wave: np.ndarray, rate: float) -> np.ndarray:
    """Phase-vocoder tempo change, pitch kept: ``rate`` > 1 is faster (length ``len / rate``)."""
    if rate <= 0:
        raise ValueError(f"time_stretch: rate={rate} must be positive")
    x = _check(wave, "time_stretch")
    if rate == 1.0 or len(x) < N_FFT:
        return x.copy()
    spec = _stft(x)
    adv = torch.linspace(0, np.pi * HOP, spec.shape[0])[:, None]
    stretched = AF.phase_vocoder(spec, rate, adv)
    return _istft(stretched, max(round(len(x) / rate), 1))


def restore_formants(wave: np.ndarray, shift: float, order: int = 18) -> np.ndarray:
    """Undo a frequency scaling by ``shift`` in the spectral envelope only, keeping the harmonics where they are.

    Each frame's LPC envelope ``E`` is replaced by ``E(f * shift)``: after resampling moved every frequency by
    ``shift``, this puts the formants back while the pitch stays moved.
    """
    x = _check(wave, "restore_formants")
    if shift == 1.0 or len(x) < N_FFT:
        return x.copy()
    spec = _stft(x)
    env = lpc_envelope((spec.abs() ** 2).numpy(), order)  # [F, T]
    bins = np.arange(env.shape[0], dtype=np.float64)
    src = np.clip(bins * shift, 0, env.shape[0] - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, env.shape[0] - 1)
    frac = (src - lo)[:, None]
    warped = (1 - frac) * env[lo] + frac * env[hi]
    out = _istft(spec * torch.from_numpy((warped / np.maximum(env, 1e-8)).astype(np.float32)), len(x))
    level, target = np.sqrt(np.mean(out.astype(np.float64) ** 2)), np.sqrt(np.mean(x.astype(np.float64) ** 2))
    return out * np.float32(target / level) if level > 0 else out


def prosody(
    wave: np.ndarray, tempo: float, semitones: float, sr: int = SAMPLE_RATE, keep_formants: bool = True
) -> np.ndarray:
    """Change tempo by ``tempo`` (faster when > 1) and pitch by ``semitones``, independently, in one pass.

    Resampling by ``2**(semitones/12)`` moves pitch and duration together; the phase vocoder first stretches by
    the rate that leaves the requested tempo after it. Resampling also moves the formants (a shorter or longer
    vocal tract); ``keep_formants`` puts them back, so only the voice's pitch changes.
    """
    shift = 2.0 ** (semitones / 12.0)
    x = time_stretch(wave, tempo / shift)
    if shift == 1.0:
        return x
    y = soxr.resample(x, sr * shift, sr).astype(np.float32)
    return restore_formants(y, shift) if keep_formants else y
