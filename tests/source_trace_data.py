"""A tiny source-tracing corpus in the deepfake corpus format: synthetic "generators" of distinct signal families.

Each generator makes 1-second clips with random pitch, rate and level, so a model must learn the generator's
signature rather than one fixed waveform. ``click_train`` is left out of training: the open-set "unknown" source.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from speech.audio import SAMPLE_RATE, write_audio

Gen = Callable[[np.random.Generator, float], np.ndarray]


def _t(seconds: float) -> np.ndarray:
    return np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE


def harmonic(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """Voiced-like: harmonics of a gliding f0 with vibrato."""
    t = _t(seconds)
    f0 = rng.uniform(100, 220) * (1 + 0.05 * np.sin(2 * np.pi * rng.uniform(3, 6) * t))
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    return sum(np.sin(k * phase) / k for k in range(1, 8))  # type: ignore[return-value]


def noise_band(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """Band-passed noise bursts (fricative-like)."""
    n = len(_t(seconds))
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    lo = rng.uniform(2500, 3500)
    spec[(f < lo) | (f > lo + 2500)] = 0
    env = (np.sin(2 * np.pi * rng.uniform(2, 5) * _t(seconds)) > -0.2).astype(float)
    return np.fft.irfft(spec, n) * env


def square(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """A band-limited-free square wave: strong odd harmonics and aliasing (a buzzy vocoder)."""
    t = _t(seconds)
    return np.sign(np.sin(2 * np.pi * rng.uniform(80, 160) * t)) * 0.5


def chirp(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """Repeated upward sweeps."""
    t = _t(seconds)
    period = rng.uniform(0.15, 0.3)
    tau = t % period
    f = 300 + (3000 / period) * tau
    return np.sin(2 * np.pi * np.cumsum(f) / SAMPLE_RATE)


def click_train(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """Sparse clicks: the generator no protocol trains on."""
    n = len(_t(seconds))
    out = np.zeros(n)
    step = int(SAMPLE_RATE / rng.uniform(20, 40))
    out[::step] = 1.0
    return np.convolve(out, np.hanning(9), mode="same")


GENERATORS: dict[str, tuple[str, Gen]] = {
    "harmonic_synth": ("formant", harmonic), "noise_synth": ("noise", noise_band),
    "square_vocoder": ("vocoder", square), "chirp_synth": ("formant", chirp), "click_synth": ("impulse", click_train),
}
KNOWN = ["chirp_synth", "harmonic_synth", "noise_synth", "square_vocoder"]
UNKNOWN_SOURCE = "click_synth"


def clip(source: str, seed: int, seconds: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    wave = GENERATORS[source][1](rng, seconds)
    wave = wave / (np.abs(wave).max() + 1e-9) * rng.uniform(0.2, 0.8) + 0.003 * rng.standard_normal(len(wave))
    return wave.astype(np.float32)


def write_trace_corpus(root: Path, per_split: tuple[int, int, int] = (12, 6, 6), seconds: float = 1.0) -> Path:
    """``root`` as a deepfake corpus with protocol ``main`` (test holds the unknown source); returns ``root``."""
    (root / "clips").mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict[str, object]]] = {"train": [], "dev": [], "test": []}
    seed = 0
    for split, n in zip(rows, per_split):
        for source in [*KNOWN, *([UNKNOWN_SOURCE] if split == "test" else [])]:
            for i in range(n):
                seed += 1
                cid = f"{source}_{split}_{i}"
                write_audio(root / "clips" / f"{cid}.wav", clip(source, seed, seconds))
                rows[split].append({"id": cid, "audio": f"clips/{cid}.wav", "source": source,
                                    "family": GENERATORS[source][0], "lang": ["eng_Latn", "deu_Latn"][i % 2],
                                    "speaker": f"spk{i % 3}", "channel": ["clean", "noise_snr15"][i % 2],
                                    "text": "", "duration": seconds})
    proto = root / "protocols" / "main"
    proto.mkdir(parents=True, exist_ok=True)
    for split, split_rows in rows.items():
        (proto / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in split_rows))
    (root / "all.jsonl").write_text("".join(json.dumps(r) + "\n" for rs in rows.values() for r in rs))
    (proto / "protocol.json").write_text(json.dumps({
        "name": "main", "description": "tiny synthetic", "known_sources": KNOWN,
        "known_families": sorted({GENERATORS[s][0] for s in KNOWN}), "held_out": {"sources": [UNKNOWN_SOURCE]},
        "task": "open_set"}))
    return root


def tiny_trace_overrides(corpus: Path) -> list[str]:
    """A tiny tracer on the tiny corpus: single process, CPU, 1-second crops, CSV logger."""
    return [f"data.corpus_dir={corpus}", "data.protocol=main", "data.num_workers=0", "data.crop_seconds=1.0",
            "data.eval_seconds=1.0", "data.batch_size=16", "data.augment.codec_prob=0.0",
            "trainer.accelerator=cpu", "trainer.precision=32-true", "logger=csv", "callbacks.progress_bar=null",
            "trainer.enable_progress_bar=false"]
