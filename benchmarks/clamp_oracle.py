"""The best text->music MRR the music corpus's descriptions allow: python benchmarks/clamp_oracle.py [corpus=data/music]
(corpus=data/music_real: the real tunes, whose descriptions say only genre, key, meter and tempo)

A description states 3-6 attributes, so it can fit other tunes of a split too. An oracle that knows every tune's
attributes ranks the tunes the description fits first, in random order among themselves. This script prints its
expected MRR per split, with how many tunes each description fits (``datamodules.music.description_fits``).
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/x.py` imports benchmarks.*

from common import runner
from datamodules.music import description_fits, read_rows


def oracle_mrr(rows: list[dict]) -> tuple[float, Counter[int]]:
    """Expected MRR of the attribute oracle, and a histogram of how many tunes each description fits."""
    total, fits = 0.0, Counter[int]()
    for row in rows:
        n = sum(description_fits(row, other) for other in rows)
        total += sum(1.0 / r for r in range(1, n + 1)) / n  # own tune uniformly placed among the n that fit
        fits[n] += 1
    return total / len(rows), fits


def run(cfg: DictConfig) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for split in ("dev", "test", "test_combo", "test_real", "test_heldout"):  # the last two: corpus=music_real
        path = Path(cfg.corpus) / f"{split}.jsonl"
        if not path.is_file():
            continue
        rows = read_rows(path, need=())
        mrr, fits = oracle_mrr(rows)
        spread = ", ".join(f"{n}: {c}" for n, c in sorted(fits.items()))
        print(f"{split:<11} {len(rows):>4} tunes  oracle MRR {mrr:.3f}  (tunes a description fits: {spread})")
        result[split] = {"tunes": len(rows), "oracle_mrr": mrr}
    return result


@hydra.main(version_base="1.3", config_path="../configs/benchmarks", config_name="clamp_oracle")
def _cli(cfg: DictConfig) -> None:
    run(runner.require(cfg, "clamp_oracle", "benchmarks"))


def main(argv: list[str]) -> dict[str, Any]:
    """``python benchmarks/clamp_oracle.py`` in-process, ``argv`` its ``key=value`` words."""
    return runner.compose_and_run("clamp_oracle", argv, run, runner.BENCHMARK_CONFIGS, "benchmarks")


if __name__ == "__main__":
    _cli()
