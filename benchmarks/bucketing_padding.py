"""Padding of length-bucketed batches vs shuffled fixed-size batches on a manifest.

    python benchmarks/bucketing_padding.py [data/speech/train.jsonl] [max_batch_seconds]

Both samplers see the same utterances; the fixed-size baseline uses the bucketed run's mean
batch size, so the comparison is at equal average batch size.
"""

from __future__ import annotations

import sys

import numpy as np

from datamodules.bucketing import DurationBatchSampler, fixed_size_batches, padding_fraction
from datamodules.manifest import read_manifest


def main() -> None:
    manifest = sys.argv[1] if len(sys.argv) > 1 else "data/speech/train.jsonl"
    max_seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 160.0
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


if __name__ == "__main__":
    main()
