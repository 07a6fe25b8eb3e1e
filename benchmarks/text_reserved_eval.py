"""The sentence encoder on the base system's own translation catalogs: real text that no corpus builder reads.

    python benchmarks/text_reserved_eval.py model=<text encoder dir> [out=runs/bench/text_reserved] [limit=4000]

The catalogs under ``/usr/share/locale`` (coreutils, apt, dpkg, gtk, git, ...) are reserved test text: the text
corpus builders skip their domains, their packages and every English message they hold, so no model trains on
them. Here they are aligned by message id and cleaned as the builder cleans catalogs
(``datamodules.corpus.text_real``), written to ``<out>/reserved.jsonl``, and scored as ``scripts/eval.py`` scores a
split (``text.xsim.evaluate_encoder``). Nobody tunes on this test: it is read, never trained on.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from common.io import write_jsonl
from datamodules.corpus.text_real import PIVOT, RealTextCorpusConfig, read_package
from text.xsim import evaluate_encoder, format_matrix, mean_error


def reserved_rows(root: Path = Path("/")) -> list[dict[str, Any]]:
    """Aligned, cleaned rows of the catalogs under ``root``/usr/share/locale (the builder's rules, with nothing
    skipped as reserved: here they are the test)."""
    report: dict[str, Any] = {"catalogs": 0, "skipped": [], "errors": [], "reserved_messages": 0}
    cfg = RealTextCorpusConfig(system_locale_dir=str(root / "__no_reserved_dir__"))
    rows = read_package(root, "system", cfg, (set(), set()), report)
    return [{"meaning": r["meaning"], "texts": r["texts"]} for _, r in sorted(rows.items()) if len(r["texts"]) > 1]


def main(argv: list[str]) -> dict[str, Any]:
    args = dict(a.split("=", 1) for a in argv)
    if "model" not in args:
        raise SystemExit(__doc__)
    system_dir = Path("/usr/share/locale")
    out = Path(args.get("out", "runs/bench/text_reserved"))
    rows = reserved_rows()
    if not rows:
        raise SystemExit(f"{system_dir}: no translated catalog messages to score")
    write_jsonl(out / "reserved.jsonl", ({"id": f"reserved-{i:06d}", **r} for i, r in enumerate(rows)))
    report = evaluate_encoder(args["model"], out / "reserved.jsonl", out, limit=int(args.get("limit", 4000)))
    matrix = report["xsim_error"]
    assert isinstance(matrix, dict)
    print(f"{len(rows)} aligned messages in {system_dir}; scored the first {report['sentences']} with two languages")
    print(format_matrix(matrix))
    trained = report["trained_langs"]
    assert isinstance(trained, list)
    eng = {x: (matrix[PIVOT].get(x), matrix.get(x, {}).get(PIVOT)) for x in trained if x != PIVOT}
    print("eng->X / X->eng:", ", ".join(f"{x[:3]} {100 * a:.1f}/{100 * b:.1f}" for x, (a, b) in eng.items()
                                         if a is not None and b is not None))
    print(f"mean over trained pairs: {100 * mean_error(matrix, trained):.2f}%   (written to {out})")
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
