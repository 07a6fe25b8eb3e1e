"""The sentence encoder on the base system's own translation catalogs: real text that no corpus builder reads.

    python benchmarks/text_reserved_eval.py model=<text encoder dir> [out=runs/bench/text_reserved] [limit=4000]

The catalogs under ``/usr/share/locale`` (coreutils, apt, dpkg, gtk, git, ...) are reserved test text: the text
corpus builders skip their domains, their packages and every English message they hold, so no model trains on
them. Here they are aligned by message id and cleaned as the builder cleans catalogs
(``datamodules.corpus.text_real``), written to ``<out>/reserved.jsonl``, and scored as ``scripts/eval.py`` scores a
split (``text.xsim.evaluate_encoder``). Nobody tunes on this test: it is read, never trained on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from common import runner
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


def run(cfg: DictConfig) -> dict[str, Any]:
    """Align the reserved catalogs, score ``cfg.model`` on them, print the table."""
    system_dir = Path("/usr/share/locale")
    out = Path(cfg.out)
    rows = reserved_rows()
    if not rows:
        raise SystemExit(f"{system_dir}: no translated catalog messages to score")
    write_jsonl(out / "reserved.jsonl", ({"id": f"reserved-{i:06d}", **r} for i, r in enumerate(rows)))
    report = evaluate_encoder(str(cfg.model), out / "reserved.jsonl", out, limit=int(cfg.limit))
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


@hydra.main(version_base="1.3", config_path="../configs/benchmarks", config_name="text_reserved_eval")
def _cli(cfg: DictConfig) -> None:
    run(runner.require(cfg, "text_reserved_eval", "benchmarks"))


def main(argv: list[str]) -> None:
    """``python benchmarks/text_reserved_eval.py`` in-process, ``argv`` its ``key=value`` words."""
    return runner.compose_and_run("text_reserved_eval", argv, run, runner.BENCHMARK_CONFIGS, "benchmarks")


if __name__ == "__main__":
    _cli()
