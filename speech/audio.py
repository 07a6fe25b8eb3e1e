"""Robust audio loading: any common format in, 16 kHz mono float32 out, or a clear AudioError."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE = 16_000
SILENCE_PEAK = 1e-4
"""Peak amplitude below which a file counts as silent."""


class AudioError(Exception):
    """An audio input that can't be used; ``str()`` names the file and the reason."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def _decode_soundfile(src: str | io.BytesIO) -> tuple[np.ndarray, int]:
    data, sr = sf.read(src, dtype="float32", always_2d=True)  # [T, C]
    return data.mean(axis=1), int(sr)


def _decode_ffmpeg(src: str | bytes, sample_rate: int) -> np.ndarray:
    """Decode mp3, m4a, ogg/opus, webm and friends by piping through ffmpeg (no shell)."""
    if shutil.which("ffmpeg") is None:
        raise RuntimeError("format not readable by soundfile and ffmpeg is not installed")
    from_stdin = isinstance(src, bytes)
    cmd = ["ffmpeg", "-nostdin" if not from_stdin else "-hide_banner", "-v", "error",
           "-i", "pipe:0" if from_stdin else str(src),
           "-f", "f32le", "-ac", "1", "-ar", str(sample_rate), "pipe:1"]
    proc = subprocess.run(cmd, input=src if from_stdin else None, capture_output=True, timeout=600)
    if proc.returncode != 0:
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RuntimeError(msg[-1] if msg else f"ffmpeg exited with {proc.returncode}")
    return np.frombuffer(proc.stdout, dtype="<f4").copy()


def decode_audio(
    src: str | os.PathLike[str] | bytes,
    sample_rate: int = SAMPLE_RATE,
    name: str | None = None,
    min_seconds: float = 0.05,
    allow_silence: bool = False,
) -> np.ndarray:
    """Decode a file path or encoded bytes into mono float32 at ``sample_rate``.

    Raises ``AudioError`` for a missing, empty, unreadable, truncated, NaN-filled, too-short
    or silent input, naming the input and the reason.
    """
    label = name or (str(src) if not isinstance(src, bytes) else "<bytes>")
    if not isinstance(src, bytes):
        path = Path(src)
        if not path.exists():
            raise AudioError(label, "file not found")
        if path.is_dir():
            raise AudioError(label, "is a directory, not an audio file")
        if path.stat().st_size == 0:
            raise AudioError(label, "empty file (0 bytes)")
    elif len(src) == 0:
        raise AudioError(label, "empty input (0 bytes)")

    try:
        wav, sr = _decode_soundfile(io.BytesIO(src) if isinstance(src, bytes) else str(src))
    except Exception as sf_err:
        try:
            wav, sr = _decode_ffmpeg(src if isinstance(src, bytes) else str(src), sample_rate), sample_rate
        except Exception as ff_err:
            raise AudioError(label, f"unreadable audio ({sf_err}; ffmpeg: {ff_err})") from ff_err

    if wav.size == 0:
        raise AudioError(label, "no audio samples (truncated or header-only file)")
    if not np.isfinite(wav).all():
        raise AudioError(label, "contains NaN or infinite samples")
    if sr != sample_rate:
        wav = soxr.resample(wav, sr, sample_rate).astype(np.float32, copy=False)
    if wav.size < min_seconds * sample_rate:
        raise AudioError(label, f"too short ({wav.size / sample_rate:.3f} s < {min_seconds} s)")
    if not allow_silence and float(np.abs(wav).max()) < SILENCE_PEAK:
        raise AudioError(label, "silent (peak amplitude below 1e-4)")
    return np.ascontiguousarray(wav, dtype=np.float32)


def load_audio(path: str | os.PathLike[str], sample_rate: int = SAMPLE_RATE, **kwargs: object) -> np.ndarray:
    """Load a file into mono float32 at ``sample_rate`` (see ``decode_audio``)."""
    return decode_audio(path, sample_rate, **kwargs)  # type: ignore[arg-type]


def audio_duration(path: str | os.PathLike[str]) -> float:
    """Duration in seconds from the header, or by decoding when the header can't tell."""
    try:
        info = sf.info(str(path))
        if info.frames > 0:
            return float(info.frames) / float(info.samplerate)
    except Exception:
        pass
    return len(load_audio(path, allow_silence=True)) / SAMPLE_RATE


def write_audio(path: str | os.PathLike[str], wav: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write 16-bit audio atomically; the format follows the suffix (.wav, .flac)."""
    from common.io import atomic_open

    path = Path(path)
    fmt = path.suffix.lstrip(".").upper() or "WAV"
    with atomic_open(path, "wb") as f:
        sf.write(f, wav, sample_rate, format=fmt, subtype="PCM_16")
