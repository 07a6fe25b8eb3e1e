"""CLaMP 3 embedding throughput (files per second) per modality, with the feature cache cold and warm.

    python benchmarks/clamp_throughput.py model=<CLaMP 3 dir> [manifest=data/music/test.jsonl] [n=200] [threads=2]

Embeds ``n`` rows' ABC, MusicXML (the same tunes converted by music21, timed as sheet music read through music21),
MIDI and audio files and their English descriptions with ``MusicEncoder`` twice: cold (a fresh encoder with an empty
audio feature cache: every file is read, MIDI parsed to MTF, audio resampled and turned into log-mel segments) and
warm (a fresh encoder over the filled disk cache, as a second indexing run sees it; MTF is cached in memory only, so
MIDI is parsed again). Prints the table and the load average, since the machine may be shared; ``output=`` writes it
as JSON.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig

from common import runner
from common.io import atomic_open
from datamodules.music import read_rows
from music.clamp.encoder import MusicEncoder


def musicxml_copies(abc_files: list[str], out: Path) -> list[str]:
    """The tunes as MusicXML (music21), to time the converted sheet-music path."""
    import music21

    paths = []
    for f in abc_files:
        path = out / (Path(f).stem + ".musicxml")
        music21.converter.parse(f).write("musicxml", fp=str(path))
        paths.append(str(path))
    return paths


def time_embed(model: str, cache: Path, inputs: list[str], texts: bool, batch_size: int) -> float:
    """Files (or texts) per second of one fresh encoder over ``inputs``."""
    enc = MusicEncoder.from_pretrained(model, device="cpu", audio_cache=cache)
    enc.batch_size = batch_size
    start = time.perf_counter()
    if texts:
        enc.embed_texts(inputs)
    else:
        bad = [o for o in enc.embed_files(inputs) if isinstance(o, str)]
        if bad:
            raise SystemExit(f"{len(bad)} files failed, first: {bad[0]}")
    return len(inputs) / (time.perf_counter() - start)


def run(cfg: DictConfig) -> dict[str, Any]:
    torch.set_num_threads(int(cfg.threads))
    rows = read_rows(cfg.manifest, need=("abc", "midi", "audio"))[: int(cfg.n)]
    load = os.getloadavg()
    print(f"{len(rows)} tunes of {cfg.manifest}, model {cfg.model}, {cfg.threads} threads, {os.cpu_count()} CPUs, "
          f"load average {load[0]:.1f} at the start")
    result: dict[str, Any] = {"model": str(cfg.model), "manifest": str(cfg.manifest), "tunes": len(rows),
                              "threads": int(cfg.threads), "cpus": os.cpu_count(), "load_start": load[0], "rows": {}}
    print(f"{'modality':<10} {'cold files/s':>13} {'warm files/s':>13}")
    with tempfile.TemporaryDirectory() as tmp:
        inputs = {"abc": [r["abc"] for r in rows], "musicxml": musicxml_copies([r["abc"] for r in rows], Path(tmp)),
                  "midi": [r["midi"] for r in rows], "audio": [r["audio"] for r in rows],
                  "text": [r["texts"].get("eng_Latn") or next(iter(r["texts"].values())) for r in rows]}
        cache = Path(tmp) / "cache"
        for modality, items in inputs.items():
            cold = time_embed(cfg.model, cache, items, modality == "text", int(cfg.batch_size))
            warm = time_embed(cfg.model, cache, items, modality == "text", int(cfg.batch_size))
            result["rows"][modality] = {"cold": cold, "warm": warm}
            print(f"{modality:<10} {cold:>13.1f} {warm:>13.1f}", flush=True)
    result["load_end"] = os.getloadavg()[0]
    print(f"load average {result['load_end']:.1f} at the end")
    if cfg.output:
        with atomic_open(cfg.output, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
    return result


@hydra.main(version_base="1.3", config_path="../configs/benchmarks", config_name="clamp_throughput")
def _cli(cfg: DictConfig) -> None:
    run(runner.require(cfg, "clamp_throughput", "benchmarks"))


def main(argv: list[str]) -> dict[str, Any]:
    """``python benchmarks/clamp_throughput.py`` in-process, ``argv`` its ``key=value`` words."""
    return runner.compose_and_run("clamp_throughput", argv, run, runner.BENCHMARK_CONFIGS, "benchmarks")


if __name__ == "__main__":
    _cli()
