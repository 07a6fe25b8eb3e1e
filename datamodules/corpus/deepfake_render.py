"""Rendering one planned clip: generate, shape (trim, cut, pause, level), send through its channel, write.

Runs in worker processes; a clip whose wav exists is only measured, so a re-run resumes. A generator that fails
comes back as a ``Failed`` naming the clip and the reason, and the build goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from common.io import atomic_open
from datamodules.corpus.deepfake_audio import active_rms_db, cut, leading_silence, normalise, pad, trim
from datamodules.corpus.deepfake_plan import Clip
from datamodules.corpus.deepfake_resynth import griffinlim_resynth, world_resynth
from datamodules.corpus.deepfake_sources import SOURCES, render_text
from speech.audio import SAMPLE_RATE, AudioError, load_audio, write_audio
from speech.channels import apply_channel


@dataclass
class Failed:
    """A clip that could not be made."""

    id: str
    source: str
    lang: str
    reason: str


def _speech(clip: Clip) -> np.ndarray:
    """The source's raw speech for the clip: appends spare sentences while it is shorter than the drawn length."""
    engine = SOURCES[clip.source].engine if clip.source in SOURCES else "file"
    if engine in ("file", "suite_tts"):
        if not clip.raw:
            raise RuntimeError("no audio was synthesized for it (see the TTS source's failed.jsonl)")
        return trim(load_audio(clip.raw))
    text, spare = clip.text, list(clip.spare)
    while True:
        wave = trim(render_text(clip.speaker, clip.lang, text, clip.prosody, clip.seed))
        if len(wave) >= clip.seconds * SAMPLE_RATE or not spare:
            break
        text = f"{text} {spare.pop(0)}"
    clip.text = text
    if engine == "world":
        wave = trim(world_resynth(wave, clip.semitones, clip.formant_warp))
    elif engine == "griffinlim":
        wave = trim(griffinlim_resynth(wave, clip.seed))
    return wave


def _row(clip: Clip, wave: np.ndarray) -> dict[str, Any]:
    return {"id": clip.id, "audio": clip.audio, "source": clip.source, "family": clip.family, "lang": clip.lang,
            "speaker": clip.speaker, "channel": clip.channel, "text": clip.text,
            "duration": round(len(wave) / SAMPLE_RATE, 3)}


def measure(wave: np.ndarray) -> dict[str, float]:
    """The cues a shortcut check looks at (not part of the manifest rows)."""
    return {"level_db": round(active_rms_db(wave), 2), "lead_s": round(leading_silence(wave), 3)}


def render(clip: Clip, root: str, min_seconds: float) -> tuple[dict[str, Any], dict[str, float]] | Failed:
    """Make the clip's wav (unless it exists); its manifest row and measured cues, or why it failed."""
    path = Path(root) / clip.audio
    try:
        if path.exists():
            wave, _ = sf.read(str(path), dtype="float32")
            # The text is fixed at render time (spare sentences may have been added): keep it beside the wav.
            text_file = path.with_suffix(".txt")
            clip.text = text_file.read_text(encoding="utf-8") if text_file.exists() else clip.text
            return _row(clip, wave), measure(wave)
        # The pauses count towards the drawn length, so a clip's length says nothing of how fast its source speaks.
        speech = cut(_speech(clip), clip.seconds - clip.lead - clip.tail)
        wave = pad(speech, clip.lead, clip.tail)
        if len(wave) < min_seconds * SAMPLE_RATE:
            raise RuntimeError(f"only {len(wave) / SAMPLE_RATE:.2f} s with pauses (at least {min_seconds} s needed)")
        wave = normalise(wave)
        rng = np.random.default_rng(clip.seed)
        wave = normalise(apply_channel(wave, SAMPLE_RATE, clip.channel, rng))
        with atomic_open(path.with_suffix(".txt"), "w", encoding="utf-8") as f:
            f.write(clip.text)
        write_audio(path, wave)
        return _row(clip, wave), measure(wave)
    except (RuntimeError, AudioError, OSError, ValueError, KeyError) as e:
        return Failed(clip.id, clip.source, clip.lang, f"{clip.audio}: {e}")
    except Exception as e:  # one bad clip (a pyworld or ffmpeg edge case) must not stop the build
        return Failed(clip.id, clip.source, clip.lang, f"{clip.audio}: {type(e).__name__}: {e}")
