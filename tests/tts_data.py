"""A tiny aligned TTS corpus (rows with units and durations, as scripts/tts_align.py writes them) for TTS tests.

Each unit is a tone of its own pitch lasting its duration exactly, so the frames really follow the units.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from speech.tts.units import char_units
from speech.vocoder.mel import MelSpec

TEXTS = {
    "deu_Latn": ["hallo welt", "guten tag", "ein haus", "die katze", "wasser", "brot und salz"],
    "ukr_Cyrl": ["привіт", "добрий день", "кіт", "вода", "хліб", "сонце"],
}
FRAMES_PER_UNIT = 4


def tone_wave(units: list[str], durations: list[int]) -> np.ndarray:
    """A waveform whose mel frame count is ``sum(durations)``: one sine per unit, its pitch set by the unit."""
    spec = MelSpec()
    samples = (sum(durations) - 1) * spec.hop  # MelSpec.frames(samples) == sum(durations)
    freq = np.repeat([150.0 + 37.0 * (ord(u) % 40) for u in units], [d * spec.hop for d in durations])
    freq = np.pad(freq, (0, max(samples - len(freq), 0)), mode="edge")[:samples]
    phase = 2 * np.pi * np.cumsum(freq) / spec.sample_rate
    return (0.3 * np.sin(phase)).astype(np.float32)


def write_tts_corpus(out: Path, per_lang: dict[str, int] | None = None) -> Path:
    """``out``/{train,dev,test}.jsonl with wavs under ``out``/wav; audio paths relative to ``out``."""
    per_lang = per_lang or {"train": 4, "dev": 1, "test": 1}
    (out / "wav").mkdir(parents=True, exist_ok=True)
    for split, n in per_lang.items():
        rows = []
        offset = {"train": 0, "dev": 4, "test": 5}.get(split, 0)
        for lang, texts in TEXTS.items():
            for i in range(n):
                text = texts[(offset + i) % len(texts)]
                units = char_units(text, lang)
                durations = [FRAMES_PER_UNIT] * len(units)
                name = f"wav/{split}_{lang}_{i}.wav"
                sf.write(out / name, tone_wave(units, durations), MelSpec().sample_rate, subtype="PCM_16")
                rows.append({"audio": name, "text": text, "lang": lang, "speaker": f"{lang}-spk{i % 2}",
                             "duration": (sum(durations) - 1) * MelSpec().hop / MelSpec().sample_rate,
                             "units": units, "durations": durations})
        with open(out / f"{split}.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    return out


TINY_NET = ["++model.net.dim=32", "++model.net.depth=2", "++model.net.heads=2", "++model.net.unit_dim=16",
            "++model.net.conv_pos_groups=4"]
"""Overrides that shrink ``flow_tts_tiny`` for tests."""


def tiny_tts_overrides(corpus: Path) -> list[str]:
    """The tiny corpus as experiment=tts_lowres's data, single process, CPU, CSV logger (network size untouched)."""
    return [
        f"data.train_manifest={corpus}/train.jsonl", f"data.val_manifest={corpus}/dev.jsonl",
        f"data.test_manifest={corpus}/test.jsonl", "data.num_workers=0", "data.stats_utterances=4",
        "trainer.accelerator=cpu", "trainer.precision=32-true", "logger=csv", "callbacks.progress_bar=null",
        "trainer.enable_progress_bar=false",
    ]
