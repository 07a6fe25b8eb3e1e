"""The best text->music MRR the music corpus's descriptions allow: python benchmarks/clamp_oracle.py [data/music]

A description states 3-6 attributes, so it can fit other tunes of a split too. An oracle that knows every tune's
attributes ranks the tunes the description fits first, in random order among themselves. This script prints its
expected MRR per split, with how many tunes each description fits (``datamodules.music.description_fits``).
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from datamodules.music import description_fits, read_rows


def oracle_mrr(rows: list[dict]) -> tuple[float, Counter[int]]:
    """Expected MRR of the attribute oracle, and a histogram of how many tunes each description fits."""
    total, fits = 0.0, Counter[int]()
    for row in rows:
        n = sum(description_fits(row, other) for other in rows)
        total += sum(1.0 / r for r in range(1, n + 1)) / n  # own tune uniformly placed among the n that fit
        fits[n] += 1
    return total / len(rows), fits


def main(root: str = "data/music") -> None:
    for split in ("dev", "test", "test_combo"):
        path = Path(root) / f"{split}.jsonl"
        if not path.is_file():
            continue
        rows = read_rows(path, need=())
        mrr, fits = oracle_mrr(rows)
        spread = ", ".join(f"{n}: {c}" for n, c in sorted(fits.items()))
        print(f"{split:<11} {len(rows):>4} tunes  oracle MRR {mrr:.3f}  (tunes a description fits: {spread})")


if __name__ == "__main__":
    main(*sys.argv[1:])
