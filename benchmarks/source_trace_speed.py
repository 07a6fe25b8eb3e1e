"""Inference speed of a source tracer on the CPU: audio-seconds traced per second, beside the front-end alone.

    python benchmarks/source_trace_speed.py [model=runs/train/source_trace_default/model] \
        [manifest=data/deepfake/protocols/main/test.jsonl] [clips=96] [batch_size=8] [threads=2] \
        [out=runs/bench/source_trace_speed]

The first ``clips`` clips of the manifest (audio relative to its corpus folder, two levels up from a protocol's
test.jsonl) are read once into memory, then traced ``repeats`` times in batches of ``batch_size`` after one untimed
warm-up pass: ``SourceTracer.trace_batch`` (front-end, back-end, heads, calibration, open-set score) and the
front-end alone (the features, e.g. LFCC with deltas and normalisation). Reading and decoding files is left out of
both. Figures: audio-seconds per second (higher is faster) and its inverse, the real-time factor, on ``threads``
intra-op threads; ``out``/source_trace_speed.json.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from omegaconf import DictConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/x.py` imports benchmarks.*

from common import runner
from common.io import atomic_open
from datamodules.manifest import read_manifest
from speech.audio import SAMPLE_RATE, load_audio
from speech.features import pad_waves
from speech.source_trace.tracer import SourceTracer

log = logging.getLogger("source_trace_speed")


def read_clips(manifest: Path, n: int, max_seconds: float) -> list[np.ndarray]:
    """The first ``n`` readable clips of a manifest (audio relative to the corpus folder or absolute)."""
    root = manifest.parent.parent.parent if manifest.parent.parent.name == "protocols" else manifest.parent
    waves = []
    for r in read_manifest(manifest, resolve_paths=False)[:n]:
        path = Path(r["audio"]).expanduser()
        waves.append(load_audio(path if path.is_absolute() else root / path)[: int(max_seconds * SAMPLE_RATE)])
    return waves


def timed(fn: Callable[[list[np.ndarray]], Any], waves: list[np.ndarray], batch_size: int, repeats: int) -> float:
    """Seconds per pass over ``waves`` (best of ``repeats``, after one warm-up pass)."""
    batches = [waves[i : i + batch_size] for i in range(0, len(waves), batch_size)]
    for b in batches:
        fn(b)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for b in batches:
            fn(b)
        best = min(best, time.perf_counter() - t0)
    return best


def run(cfg: DictConfig) -> dict[str, Any]:
    runner.setup_threads(cfg.threads)
    tracer = SourceTracer.from_pretrained(cfg.model, max_seconds=float(cfg.max_seconds))
    waves = read_clips(Path(cfg.manifest), int(cfg.clips), float(cfg.max_seconds))
    if not waves:
        raise SystemExit(f"source_trace_speed: {cfg.manifest} holds no clips")
    audio = sum(len(w) for w in waves) / SAMPLE_RATE

    @torch.inference_mode()
    def features(batch: list[np.ndarray]) -> Any:
        return tracer.net.frontend(*pad_waves(batch))

    bs, reps = int(cfg.batch_size), int(cfg.repeats)
    t_all = timed(tracer.trace_batch, waves, bs, reps)
    t_feat = timed(features, waves, bs, reps)
    config = json.loads((Path(cfg.model) / "config.json").read_text(encoding="utf-8"))
    result = {
        "command": (f"python benchmarks/source_trace_speed.py model={cfg.model} manifest={cfg.manifest} "
                    f"clips={cfg.clips} batch_size={bs} threads={cfg.threads}"),
        "model": str(cfg.model), "frontend": config["frontend"]["kind"], "backend": config["backend"]["kind"],
        "parameters": sum(p.numel() for p in tracer.net.parameters()), "clips": len(waves),
        "audio_seconds": round(audio, 2), "threads": cfg.threads, "batch_size": bs,
        "cpu": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2),
        "tracer": {"seconds": round(t_all, 3), "audio_s_per_s": round(audio / t_all, 1),
                   "rtf": round(t_all / audio, 4)},
        "frontend_only": {"seconds": round(t_feat, 3), "audio_s_per_s": round(audio / t_feat, 1),
                          "rtf": round(t_feat / audio, 4)},
    }
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_open(out / "source_trace_speed.json", "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    print(f"{result['frontend']} + {result['backend']} on {cfg.threads} threads, {len(waves)} clips "
          f"({audio:.0f} s of audio), batch {bs}, load average {result['load_average_1min']}:\n"
          f"  whole tracer   {result['tracer']['audio_s_per_s']:>8.1f} audio-s/s  (RTF {result['tracer']['rtf']})\n"
          f"  front-end only {result['frontend_only']['audio_s_per_s']:>8.1f} audio-s/s  "
          f"(RTF {result['frontend_only']['rtf']})")
    return result


@hydra.main(version_base="1.3", config_path="../configs/benchmarks", config_name="source_trace_speed")
def _cli(cfg: DictConfig) -> None:
    run(runner.require(cfg, "source_trace_speed", "benchmarks"))


def main(argv: list[str]) -> dict[str, Any]:
    """``python benchmarks/source_trace_speed.py`` in-process, ``argv`` its ``key=value`` words."""
    return runner.compose_and_run("source_trace_speed", argv, run, runner.BENCHMARK_CONFIGS, "benchmarks")


if __name__ == "__main__":
    _cli()
