"""Training throughput (audio seconds per wall second) of an ASR config on this machine.

    python benchmarks/train_throughput.py [steps=30] [threads=2] [max_batch_seconds=160] [precision=32-true]
        [workers=1]

Runs real optimisation steps of the ``asr_lowres`` model on batches from the generated corpus
(data loading included, ``workers`` loader processes) after 3 warm-up steps.
"""

from __future__ import annotations

import time

import hydra
import torch
from omegaconf import DictConfig

from common import runner
from datamodules.speech import SpeechDataModule
from speech.asr.config import conformer_tiny
from speech.asr.module import ASRModule


def run(cfg: DictConfig) -> None:
    """Time ``cfg.steps`` optimisation steps and print the throughput."""
    steps, threads = int(cfg.steps), int(cfg.threads)
    max_seconds = float(cfg.max_batch_seconds)
    precision, workers = str(cfg.precision), int(cfg.workers)
    torch.set_num_threads(threads)
    dm = SpeechDataModule("data/speech/train.jsonl", max_batch_seconds=max_seconds, num_workers=workers,
                          speed_perturb=[0.9, 1.0, 1.1])
    module = ASRModule(conformer_tiny(), **dm.model_kwargs())
    opt = torch.optim.AdamW(module.parameters(), lr=1e-3)
    loader = iter(dm.train_dataloader())
    audio, start = 0.0, 0.0
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision.startswith("bf16"))
    for i in range(steps + 3):
        if i == 3:
            audio, start = 0.0, time.perf_counter()
        batch = next(loader)
        with autocast:
            loss, _, _ = module._loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        audio += batch["seconds"]
    wall = time.perf_counter() - start
    print(f"threads={threads} workers={workers} max_batch_seconds={max_seconds} precision={precision}: {steps} steps, "
          f"{audio:.0f} audio s in {wall:.1f} s -> {audio / wall:.1f} audio s / wall s, {wall / steps:.2f} s/step")


@hydra.main(version_base="1.3", config_path="../configs/benchmarks", config_name="train_throughput")
def _cli(cfg: DictConfig) -> None:
    run(runner.require(cfg, "train_throughput", "benchmarks"))


def main(argv: list[str]) -> None:
    """``python benchmarks/train_throughput.py`` in-process, ``argv`` its ``key=value`` words."""
    return runner.compose_and_run("train_throughput", argv, run, runner.BENCHMARK_CONFIGS, "benchmarks")


if __name__ == "__main__":
    _cli()
