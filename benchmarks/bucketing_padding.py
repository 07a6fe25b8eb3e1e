"""Padding of length-bucketed batches vs shuffled fixed-size batches on a manifest.

    python benchmarks/bucketing_padding.py [manifest=data/speech/train.jsonl] [max_batch_seconds=160]

Both samplers see the same utterances; the fixed-size baseline uses the bucketed run's mean
batch size, so the comparison is at equal average batch size.
"""

from __future__ import annotations

import hydra
import numpy as np
from omegaconf import DictConfig

from common import runner
from datamodules.bucketing import DurationBatchSampler, fixed_size_batches, padding_fraction
from datamodules.manifest import read_manifest


def run(cfg: DictConfig) -> None:
    """Print the padding table of ``cfg.manifest``."""
    manifest, max_seconds = str(cfg.manifest), float(cfg.max_batch_seconds)
    durations = [float(r["duration"]) for r in read_manifest(manifest)]
    print(f"{manifest}: {len(durations)} utterances, {sum(durations) / 3600:.2f} h, "
          f"duration mean {np.mean(durations):.2f} s, min {min(durations):.2f}, max {max(durations):.2f}")
    rows = []
    for buckets in (1, 10, 30, 60):
        sampler = DurationBatchSampler(durations, max_seconds, num_buckets=buckets, shuffle=True, seed=0)
        batches = list(sampler)
        mean_bs = np.mean([len(b) for b in batches])
        fixed = fixed_size_batches(len(durations), max(1, round(mean_bs)), seed=0)
        rows.append((buckets, len(batches), mean_bs, padding_fraction(batches, durations),
                     padding_fraction(fixed, durations)))
    print(f"{'buckets':>8} {'batches':>8} {'mean size':>10} {'bucketed pad %':>15} {'fixed pad %':>12} {'ratio':>7}")
    for b, n, bs, pb, pf in rows:
        print(f"{b:>8} {n:>8} {bs:>10.1f} {100 * pb:>15.2f} {100 * pf:>12.2f} {pf / max(pb, 1e-9):>7.1f}x")


@hydra.main(version_base="1.3", config_path="../configs/benchmarks", config_name="bucketing_padding")
def _cli(cfg: DictConfig) -> None:
    run(runner.require(cfg, "bucketing_padding", "benchmarks"))


def main(argv: list[str]) -> None:
    """``python benchmarks/bucketing_padding.py`` in-process, ``argv`` its ``key=value`` words."""
    return runner.compose_and_run("bucketing_padding", argv, run, runner.BENCHMARK_CONFIGS, "benchmarks")


if __name__ == "__main__":
    _cli()
