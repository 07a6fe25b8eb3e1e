"""Render ABC to MIDI with abc2midi and MIDI to 16 kHz mono audio with fluidsynth and a General MIDI soundfont.

Both tools are Debian packages (abcmidi, fluidsynth, timgm6mb-soundfont). Every output is written to a temporary
sibling and renamed, so an interrupted build never leaves a half file under a final name.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from speech.audio import write_audio

SOUNDFONT = "/usr/share/sounds/sf2/TimGM6mb.sf2"
"""Default General MIDI soundfont (Debian timgm6mb-soundfont)."""
SAMPLE_RATE = 16000


class RenderError(RuntimeError):
    """A tune that a renderer refused; the message names the file and the reason."""


def check_tools(audio: bool, soundfont: str) -> None:
    """Fail early, with the package to install, when a renderer is missing."""
    if shutil.which("abc2midi") is None:
        raise RuntimeError("abc2midi is not installed (apt-get install abcmidi)")
    if audio and shutil.which("fluidsynth") is None:
        raise RuntimeError("fluidsynth is not installed (apt-get install fluidsynth)")
    if audio and not Path(soundfont).is_file():
        raise FileNotFoundError(f"{soundfont}: soundfont not found (apt-get install timgm6mb-soundfont)")


def abc_to_midi(abc_text: str, out: Path, name: str, timeout: float = 60) -> None:
    """Write ``out`` (.mid) from ABC text; ``name`` labels errors. Fermatas are not lengthened (-NFER), so the
    voices of a chorale keep their bar lengths."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".abc2midi.") as tmp:
        src, mid = Path(tmp) / "tune.abc", Path(tmp) / "tune.mid"
        src.write_text(abc_text, encoding="utf-8")
        proc = subprocess.run(["abc2midi", str(src), "-o", str(mid), "-NFER", "-silent"], capture_output=True,
                              text=True, timeout=timeout)
        errors = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.lower().startswith("error")]
        if proc.returncode != 0 or errors or not mid.is_file() or mid.stat().st_size == 0:
            reason = "; ".join(errors) or proc.stderr.strip() or f"exit status {proc.returncode}"
            raise RenderError(f"{name}: abc2midi failed: {reason}")
        os.replace(mid, out)


def trim(wav: np.ndarray, max_seconds: float, threshold: float = 1e-3, fade: float = 0.05) -> np.ndarray:
    """Cut leading and trailing near-silence, keep at most ``max_seconds`` and fade the cut end out."""
    loud = np.flatnonzero(np.abs(wav) > threshold)
    if loud.size == 0:
        return wav[:0]
    wav = wav[loud[0] : loud[-1] + 1]
    limit = int(max_seconds * SAMPLE_RATE)
    if wav.size > limit:
        wav = wav[:limit].copy()
        n = int(fade * SAMPLE_RATE)
        wav[-n:] *= np.linspace(1.0, 0.0, n, dtype=wav.dtype)
    return wav


def midi_to_audio(mid: Path, out: Path, name: str, soundfont: str = SOUNDFONT, max_seconds: float = 12.0,
                  gain: float = 0.5, timeout: float = 120) -> float:
    """Render ``mid`` to ``out`` (16 kHz mono wav, trimmed); returns its duration in seconds."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".fluidsynth.") as tmp:
        raw = Path(tmp) / "raw.wav"
        proc = subprocess.run(["fluidsynth", "-ni", "-q", "-g", str(gain), "-r", str(SAMPLE_RATE), "-F", str(raw),
                               soundfont, str(mid)], capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0 or not raw.is_file():
            raise RenderError(f"{name}: fluidsynth failed: {proc.stderr.strip() or proc.returncode}")
        wav, sr = sf.read(str(raw), dtype="float32", always_2d=True)
    if sr != SAMPLE_RATE:
        raise RenderError(f"{name}: fluidsynth wrote {sr} Hz, not {SAMPLE_RATE}")
    mono = trim(np.clip(wav.mean(axis=1), -1.0, 1.0), max_seconds)
    if mono.size < SAMPLE_RATE // 2:
        raise RenderError(f"{name}: rendered audio is silent or shorter than 0.5 s")
    write_audio(out, mono, SAMPLE_RATE)
    return mono.size / SAMPLE_RATE
