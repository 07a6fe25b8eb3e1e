"""Word n-gram LM from a text file: python scripts/build_word_lm.py input=corpus.txt output=lm.arpa [order=3]

Interpolated Kneser-Ney (text/word_lm.py) written as ARPA, which ``kenlm.Model`` and pyctcdecode load.
``scripts/build_lm.py kenlm=true`` builds these per language from a model's training text by itself.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from common import runner
from text.word_lm import KneserNeyLM


def run(cfg: DictConfig) -> Path:
    """Fit the LM on the non-empty lines of ``cfg.input`` and write it to ``cfg.output``."""
    src = Path(cfg.input)
    if not src.is_file():
        raise SystemExit(f"{src}: text file not found")
    lines = [s.strip() for s in src.read_text(encoding="utf-8").splitlines() if s.strip()]
    lm = KneserNeyLM(cfg.order).fit(lines)
    out = lm.write_arpa(cfg.output)
    print(f"{len(lines)} lines, {len(lm.vocab)} words -> {out}")
    return out


@hydra.main(version_base="1.3", config_path="../configs/inference", config_name="build_word_lm")
def main(cfg: DictConfig) -> None:
    run(runner.require(cfg, "build_word_lm"))


if __name__ == "__main__":
    main()
