"""Waveform augmentation for training utterances: prosody, voice source, speed, reverberation, noise, band, gain.

Everything is generated on the fly (no noise or RIR downloads) and cheap enough for CPU DataLoader workers.
``Augment(cfg)(wave, rng)`` draws each step with its probability; the steps are small functions that take their
parameters explicitly, so tests (and users) can call them with known values.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

import numpy as np
import soxr
import torch

from speech.audio import SAMPLE_RATE
from speech.augment_voice import breathy, prosody, pseudo_whisper

NOISE_KINDS = ("white", "pink", "brown", "babble")
COLOUR_EXPONENT = {"white": 0.0, "pink": 1.0, "brown": 2.0}
"""Power spectrum falls as 1/f**exponent."""
PEAK = 0.99
"""Output peak ceiling: a louder result is scaled down, never clipped."""

Wave = TypeVar("Wave", np.ndarray, torch.Tensor)


@dataclass
class AugmentConfig:
    """Probabilities and ranges of the training-time waveform augmentation (all off by default)."""

    speed_prob: float = 0.0
    """Chance of speed perturbation (changes duration and pitch, as Kaldi/ESPnet do)."""
    speeds: list[float] = field(default_factory=lambda: [0.9, 1.1])
    """Speed factors drawn from uniformly when speed perturbation applies."""
    reverb_prob: float = 0.0
    """Chance of convolving with a synthetic room impulse response."""
    rt60: tuple[float, float] = (0.2, 0.8)
    """Range of the RIR's reverberation time (s) for a 60 dB decay."""
    drr_db: tuple[float, float] = (0.0, 12.0)
    """Range of the RIR's direct-to-reverberant energy ratio (dB)."""
    noise_prob: float = 0.0
    """Chance of additive noise."""
    noise_kinds: list[str] = field(default_factory=lambda: list(NOISE_KINDS))
    """Noise types drawn from uniformly: white, pink, brown (spectrally shaped) and babble (other utterances)."""
    snr_db: tuple[float, float] = (5.0, 25.0)
    """Range of the signal-to-noise ratio (dB)."""
    babble_speakers: tuple[int, int] = (3, 6)
    """Range of how many reservoir utterances are summed into babble."""
    babble_reservoir: int = 32
    """Clean training utterances kept (per worker) as babble sources; babble falls back to pink noise when empty."""
    bandlimit_prob: float = 0.0
    """Chance of telephone-like band-limiting."""
    band_hz: tuple[float, float] = (300.0, 3400.0)
    """Pass band of the band-limiting (Hz)."""
    gain_prob: float = 0.0
    """Chance of a random gain."""
    gain_db: tuple[float, float] = (-10.0, 6.0)
    """Range of the gain (dB); a result past the peak ceiling is scaled down, not clipped."""
    prosody_prob: float = 0.0
    """Chance of an independent tempo change and pitch shift (phase vocoder + resampling)."""
    tempo: tuple[float, float] = (0.65, 1.6)
    """Range of the tempo factor (> 1 faster), drawn log-uniformly."""
    semitones: tuple[float, float] = (-5.0, 5.0)
    """Range of the pitch shift (semitones), drawn uniformly."""
    whisper_prob: float = 0.0
    """Chance of pseudo-whisper: the LPC envelope re-excited by noise (no voicing, no pitch)."""
    whisper_tilt: tuple[float, float] = (0.0, 0.7)
    """Range of the pre-emphasis applied to pseudo-whisper (whispers lack low-frequency energy)."""
    breathy_prob: float = 0.0
    """Chance of mixing the utterance with its noise-excited version (when pseudo-whisper did not apply)."""
    breath_ratio: tuple[float, float] = (0.2, 0.6)
    """Range of the noise-excited part's share of the level."""
    lpc_order: int = 18
    """LPC order of the envelope analysis (16 kHz: about 2 poles per kHz plus a few)."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_prob") and not 0.0 <= value <= 1.0:
                raise ValueError(f"data.augment.{f.name}={value}: a probability must be in [0, 1]")
            is_range = isinstance(value, (tuple, list)) and f.name not in ("speeds", "noise_kinds")
            if is_range and (len(value) != 2 or value[0] > value[1]):
                raise ValueError(f"data.augment.{f.name}={list(value)}: give a range [low, high] with low <= high")
        if self.speed_prob and (not self.speeds or min(self.speeds) <= 0):
            raise ValueError(f"data.augment.speeds={self.speeds}: give positive speed factors")
        unknown = sorted(set(self.noise_kinds) - set(NOISE_KINDS))
        if unknown or (self.noise_prob and not self.noise_kinds):
            raise ValueError(f"data.augment.noise_kinds={self.noise_kinds}: choose from {list(NOISE_KINDS)}")
        if self.rt60[0] <= 0 or self.babble_speakers[0] < 1 or self.babble_reservoir < 1:
            raise ValueError("data.augment: rt60 must be > 0, babble_speakers >= 1 and babble_reservoir >= 1")
        if self.tempo[0] <= 0 or not 0.0 <= self.whisper_tilt[0] <= self.whisper_tilt[1] < 1.0:
            raise ValueError("data.augment: tempo must be > 0 and whisper_tilt within [0, 1)")
        if not 0.0 <= self.breath_ratio[0] <= self.breath_ratio[1] <= 1.0 or self.lpc_order < 1:
            raise ValueError("data.augment: breath_ratio must be within [0, 1] and lpc_order >= 1")

    @classmethod
    def from_dict(cls, cfg: dict[str, Any]) -> AugmentConfig:
        """Build from a config block; an unknown key gets one clear message naming it."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ValueError(f"data.augment: unknown keys {unknown}; known: {sorted(known)}")
        kwargs: dict[str, Any] = {k: tuple(v) if isinstance(v, (list, tuple)) and k not in ("speeds", "noise_kinds")
                                  else v for k, v in cfg.items()}
        return cls(**kwargs)

    @property
    def active(self) -> bool:
        """Whether any step can apply."""
        return any(getattr(self, f.name) > 0 for f in fields(self) if f.name.endswith("_prob"))


@functools.lru_cache(maxsize=4096)
def fft_size(n: int) -> int:
    """The smallest 2**a * 3**b * 5**c >= n: numpy's FFT is many times slower on lengths with large prime factors."""
    best = 1 << max(n - 1, 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p235 = p35 << max((n - 1) // p35, 0).bit_length()  # the least power-of-two multiple of p35 that is >= n
            best = min(best, p235)
            p35 *= 3
        p5 *= 5
    return best


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def speed_perturb(wave: np.ndarray, factor: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Play ``factor`` times faster: the length becomes ``len / factor`` (pitch moves too, as in Kaldi)."""
    if factor == 1.0:
        return wave
    # Treat the signal as sampled at sr*factor and resample it to sr.
    return soxr.resample(wave, sr * factor, sr).astype(np.float32)


def apply_gain(wave: np.ndarray, db: float) -> np.ndarray:
    return wave * np.float32(10.0 ** (db / 20.0))


def coloured_noise(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise whose power spectrum falls as 1/f**exponent (0 white, 1 pink, 2 brown), unit RMS."""
    noise: np.ndarray
    if exponent == 0.0:
        noise = rng.standard_normal(n, dtype=np.float32)
    else:
        size = fft_size(n)
        noise = np.fft.irfft(np.fft.rfft(rng.standard_normal(size, dtype=np.float32)) * _shaping(size, exponent),
                             size)[:n]
    return (noise / max(rms(noise), 1e-12)).astype(np.float32)


@functools.lru_cache(maxsize=64)
def _shaping(size: int, exponent: float) -> np.ndarray:
    """Amplitude gains f**(-exponent/2) over the rfft bins of ``size`` (DC removed); cached, sizes are few."""
    f = np.arange(size // 2 + 1, dtype=np.float64)
    f[0] = 1.0
    gains = f ** (-exponent / 2.0)
    gains[0] = 0.0
    return gains.astype(np.float32)


def babble(n: int, sources: list[np.ndarray], speakers: int, rng: np.random.Generator) -> np.ndarray:
    """Sum of ``speakers`` utterances from ``sources``, each at unit RMS, randomly offset and looped to ``n``."""
    out = np.zeros(n, dtype=np.float32)
    for k in rng.choice(len(sources), size=min(speakers, len(sources)), replace=False):
        src = sources[int(k)]
        start = int(rng.integers(len(src)))
        looped = np.resize(np.concatenate([src[start:], src[:start]]), n)
        out += looped / np.float32(max(rms(src), 1e-12))
    return out


def add_noise(wave: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``wave`` plus ``noise`` scaled to the given signal-to-noise ratio (silent inputs stay as they are)."""
    p_sig, p_noise = rms(wave) ** 2, rms(noise) ** 2
    if p_sig == 0.0 or p_noise == 0.0:
        return wave
    scale = math.sqrt(p_sig / (p_noise * 10.0 ** (snr_db / 10.0)))
    return (wave + np.float32(scale) * noise).astype(np.float32)


def synthetic_rir(rt60: float, drr_db: float, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Direct path plus an exponentially decaying noise tail (60 dB over ``rt60`` s) at the given DRR."""
    n = max(int(rt60 * sr), 2)
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-3.0 * math.log(10.0) * t / rt60)  # amplitude falls 60 dB over rt60
    tail[0] = 0.0
    tail *= math.sqrt(10.0 ** (-drr_db / 10.0)) / max(float(np.linalg.norm(tail)), 1e-12)
    tail[0] = 1.0  # direct path, energy 1
    return tail.astype(np.float32)


def reverberate(wave: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """FFT convolution cut to the input length, rescaled to the input's RMS (gain is a separate step)."""
    size = fft_size(len(wave) + len(rir) - 1)
    out = np.fft.irfft(np.fft.rfft(wave, size) * np.fft.rfft(rir, size), size)[: len(wave)]
    level = rms(out)
    return (out * (rms(wave) / level if level > 0 else 1.0)).astype(np.float32)


def band_limit(wave: np.ndarray, low_hz: float, high_hz: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Zero the spectrum outside ``[low_hz, high_hz]`` (a telephone channel is 300-3400 Hz)."""
    size = fft_size(len(wave))  # zero padding also keeps the end from leaking into the start
    spec = np.fft.rfft(wave, size)
    freqs = np.fft.rfftfreq(size, 1.0 / sr)
    spec[(freqs < low_hz) | (freqs > high_hz)] = 0.0
    return np.fft.irfft(spec, size)[: len(wave)].astype(np.float32)


def limit_peak(wave: np.ndarray, peak: float = PEAK) -> np.ndarray:
    """Scale down (never clip) a wave whose peak exceeds ``peak``."""
    top = float(np.max(np.abs(wave))) if len(wave) else 0.0
    return wave * np.float32(peak / top) if top > peak else wave


class Augment:
    """Training-time augmentation: prosody, whisper or breathiness, speed, reverb, noise, band-limit, gain, then a
    peak guard; each with its chance.

    Keeps a small reservoir of clean inputs as babble sources, so one instance per DataLoader worker.
    """

    def __init__(self, cfg: AugmentConfig | dict[str, Any]):
        self.cfg = cfg if isinstance(cfg, AugmentConfig) else AugmentConfig.from_dict(cfg)
        self.reservoir: list[np.ndarray] = []
        self.seen = 0

    def __call__(self, wave: Wave, rng: np.random.Generator) -> Wave:
        x = wave.detach().cpu().numpy() if isinstance(wave, torch.Tensor) else np.asarray(wave)
        x = x.astype(np.float32, copy=True)
        clean = x
        c = self.cfg
        if c.prosody_prob and rng.random() < c.prosody_prob:
            lo, hi = np.log(c.tempo[0]), np.log(c.tempo[1])
            x = prosody(x, float(np.exp(rng.uniform(lo, hi))), rng.uniform(*c.semitones))
        if c.whisper_prob and rng.random() < c.whisper_prob:
            x = pseudo_whisper(x, rng, c.lpc_order, rng.uniform(*c.whisper_tilt))
        elif c.breathy_prob and rng.random() < c.breathy_prob:
            x = breathy(x, rng, rng.uniform(*c.breath_ratio), c.lpc_order)
        if c.speed_prob and rng.random() < c.speed_prob:
            x = speed_perturb(x, float(rng.choice(c.speeds)))
        if c.reverb_prob and rng.random() < c.reverb_prob:
            x = reverberate(x, synthetic_rir(rng.uniform(*c.rt60), rng.uniform(*c.drr_db), rng))
        if c.noise_prob and rng.random() < c.noise_prob:
            x = add_noise(x, self.noise(str(rng.choice(c.noise_kinds)), len(x), rng), rng.uniform(*c.snr_db))
        if c.bandlimit_prob and rng.random() < c.bandlimit_prob:
            x = band_limit(x, *c.band_hz)
        if c.gain_prob and rng.random() < c.gain_prob:
            x = apply_gain(x, rng.uniform(*c.gain_db))
        self.remember(clean, rng)
        x = limit_peak(x)
        return torch.from_numpy(x) if isinstance(wave, torch.Tensor) else x

    def noise(self, kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
        """Unit-level noise of one kind; babble needs reservoir utterances and is pink noise until there are some."""
        if kind == "babble" and self.reservoir:
            lo, hi = self.cfg.babble_speakers
            return babble(n, self.reservoir, int(rng.integers(lo, hi + 1)), rng)
        return coloured_noise(n, COLOUR_EXPONENT.get(kind, 1.0), rng)

    def remember(self, clean: np.ndarray, rng: np.random.Generator) -> None:
        """Reservoir sampling over the clean inputs seen so far (kept after drawing, so no utterance babbles itself)."""
        if "babble" not in self.cfg.noise_kinds or not self.cfg.noise_prob or rms(clean) == 0.0:
            return
        self.seen += 1
        if len(self.reservoir) < self.cfg.babble_reservoir:
            self.reservoir.append(clean)
        else:
            k = int(rng.integers(self.seen))
            if k < self.cfg.babble_reservoir:
                self.reservoir[k] = clean
