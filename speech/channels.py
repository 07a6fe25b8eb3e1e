"""Transmission channels: lossy codecs (an ffmpeg round trip), resampling, additive noise and room reverberation.

A channel is what happens to audio after it was made (sent as mp3, played in a room, recorded over a phone line),
so it must not reveal who made it. The deepfake corpus gives each clip one channel, and training code can draw
channels as augmentation: ``apply_channel(wave, 16000, "opus_16k", rng)``.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

import numpy as np
import soxr
from scipy.signal import fftconvolve


@dataclass(frozen=True)
class Channel:
    """One channel condition."""

    kind: str
    """``clean``, ``codec``, ``resample``, ``noise`` or ``reverb``."""
    codec: str = ""
    """ffmpeg encoder (``libmp3lame``, ``libopus``, ``aac``, ``libvorbis``) for ``codec``."""
    container: str = ""
    """ffmpeg muxer that carries the encoded stream through the pipe (``mp3``, ``ogg``, ``adts``)."""
    bitrate: str = ""
    """Encoder bit rate (``24k``)."""
    rate: int = 0
    """Sample rate the codec runs at, or the band-limiting rate of ``resample`` (0: the input's)."""
    snr_db: float = 0.0
    """Signal-to-noise ratio of ``noise``."""
    rt60: tuple[float, float] = (0.0, 0.0)
    """Range of the reverberation time (seconds) of ``reverb``; each call draws one."""


def _codec(codec: str, container: str, bitrate: str, rate: int = 0) -> Channel:
    return Channel("codec", codec=codec, container=container, bitrate=bitrate, rate=rate)


CHANNELS: dict[str, Channel] = {
    "clean": Channel("clean"),
    "mp3_24k": _codec("libmp3lame", "mp3", "24k"),
    "mp3_64k": _codec("libmp3lame", "mp3", "64k"),
    "aac_32k": _codec("aac", "adts", "32k"),
    "aac_64k": _codec("aac", "adts", "64k"),
    "opus_12k": _codec("libopus", "ogg", "12k"),
    "opus_16k": _codec("libopus", "ogg", "16k"),
    "opus_32k": _codec("libopus", "ogg", "32k"),
    "vorbis_32k": _codec("libvorbis", "ogg", "32k"),
    "resample_8k": Channel("resample", rate=8000),
    "resample_11k": Channel("resample", rate=11025),
    "noise_snr15": Channel("noise", snr_db=15.0),
    "noise_snr25": Channel("noise", snr_db=25.0),
    "reverb": Channel("reverb", rt60=(0.2, 0.7)),
}
"""Every channel by name; a codec's family is the part before ``_`` (``opus`` for ``opus_16k``)."""


def codec_family(name: str) -> str:
    """``opus`` for ``opus_16k``, ``clean`` for ``clean``: the unit the unseen-channel protocol holds out."""
    return name.split("_", 1)[0]


def apply_channel(wave: np.ndarray, sample_rate: int, name: str, rng: np.random.Generator) -> np.ndarray:
    """``wave`` (mono float32) passed through channel ``name``: same rate, same length, float32."""
    if name not in CHANNELS:
        raise KeyError(f"unknown channel {name!r}; known: {', '.join(CHANNELS)}")
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1:
        raise ValueError(f"apply_channel takes mono audio [S], got shape {wave.shape}")
    ch = CHANNELS[name]
    if ch.kind == "clean" or len(wave) == 0:
        out = wave.copy()
    elif ch.kind == "codec":
        out = _align(wave, _ffmpeg_round_trip(wave, sample_rate, ch))
    elif ch.kind == "resample":
        low = soxr.resample(wave, sample_rate, ch.rate)
        out = soxr.resample(low, ch.rate, sample_rate)
    elif ch.kind == "noise":
        out = wave + _noise(wave, ch.snr_db, rng)
    else:
        out = _reverb(wave, sample_rate, float(rng.uniform(*ch.rt60)), rng)
    return _fit(np.asarray(out, dtype=np.float32), len(wave))


def _ffmpeg_round_trip(wave: np.ndarray, sample_rate: int, ch: Channel) -> np.ndarray:
    """Encode raw float samples through stdin and decode them back through stdout: no temporary files."""
    if shutil.which("ffmpeg") is None:
        raise RuntimeError("ffmpeg is not installed (apt-get install ffmpeg): codec channels need it")
    rate = ["-ar", str(ch.rate)] if ch.rate else []
    if ch.codec == "libopus":  # opus runs at 48 kHz; the decoder resamples back below
        rate = ["-ar", "48000"]
    raw = ["-f", "f32le", "-ac", "1", "-ar", str(sample_rate)]
    enc = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", *raw, "-i", "pipe:0", "-c:a", ch.codec, "-b:a", ch.bitrate, *rate,
         "-f", ch.container, "pipe:1"], input=wave.astype("<f4").tobytes(), capture_output=True, timeout=120)
    if enc.returncode != 0 or not enc.stdout:
        raise RuntimeError(f"ffmpeg {ch.codec} {ch.bitrate} encoding failed: {enc.stderr.decode(errors='replace')}")
    dec = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", "pipe:0", *raw, "pipe:1"],
                         input=enc.stdout, capture_output=True, timeout=120)
    if dec.returncode != 0:
        raise RuntimeError(f"ffmpeg {ch.codec} decoding failed: {dec.stderr.decode(errors='replace')}")
    return np.frombuffer(dec.stdout, dtype="<f4").astype(np.float32)


def _align(ref: np.ndarray, out: np.ndarray, max_lag: int = 4096) -> np.ndarray:
    """Undo the codec's priming delay: shift ``out`` by the lag (0..max_lag) that best matches ``ref``."""
    n = min(len(ref), len(out))
    if n < 64:
        return out
    corr = fftconvolve(out[: n + max_lag], ref[:n][::-1], mode="full")[n - 1 : n - 1 + max_lag + 1]
    lag = int(np.argmax(corr)) if len(corr) else 0
    return out[lag:]


def _fit(wave: np.ndarray, length: int) -> np.ndarray:
    """Cut or zero-pad to ``length`` samples, so a channel never changes a clip's duration."""
    if len(wave) >= length:
        return wave[:length]
    return np.pad(wave, (0, length - len(wave)))


def _noise(wave: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """White, pink or brown noise at ``snr_db`` below the speech's active power."""
    white = rng.standard_normal(len(wave))
    colour = rng.choice(["white", "pink", "brown"])
    if colour != "white":
        spec = np.fft.rfft(white)
        f = np.maximum(np.arange(len(spec)), 1.0)
        spec /= np.sqrt(f) if colour == "pink" else f
        white = np.fft.irfft(spec, n=len(wave))
    noise = white / (np.sqrt(np.mean(white**2)) + 1e-12)
    loud = wave[np.abs(wave) > 0.05 * (np.abs(wave).max() + 1e-12)]
    power = float(np.mean(loud**2)) if len(loud) else float(np.mean(wave**2))
    return (noise * np.sqrt(power / 10 ** (snr_db / 10))).astype(np.float32)


def room_impulse_response(sample_rate: int, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """A synthetic room: a direct path, then exponentially decaying noise (-60 dB at ``rt60``) after a short gap."""
    n = max(1, int(rt60 * sample_rate))
    t = np.arange(n) / sample_rate
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)  # ln(1000) = 6.9: -60 dB at rt60
    gap = int(rng.uniform(0.002, 0.01) * sample_rate)  # first reflections arrive a few ms after the direct sound
    tail[:gap] = 0.0
    rir = 0.3 * tail / (np.sqrt(np.sum(tail**2)) + 1e-12)
    rir[0] = 1.0
    return rir.astype(np.float32)


def _reverb(wave: np.ndarray, sample_rate: int, rt60: float, rng: np.random.Generator) -> np.ndarray:
    wet = fftconvolve(wave, room_impulse_response(sample_rate, rt60, rng))[: len(wave)]
    peak = np.abs(wet).max()
    return wet / peak * np.abs(wave).max() if peak > 0 else wet
