"""Build a generated corpus: python scripts/make_corpus.py corpus=speech [corpus.langs=[...]]

The corpus config's ``builder`` names the ``common.commands.CORPUS_BUILDERS`` entry that writes it; the rest
of it is the builder's typed config (``_target_``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from common.commands import CORPUS_BUILDERS
from common.registry import UnknownName

log = logging.getLogger("make_corpus")


def run(cfg: DictConfig) -> dict[str, Any]:
    """Write the corpus that ``cfg.corpus`` describes; returns its statistics."""
    params = OmegaConf.to_container(cfg.corpus, resolve=True)
    assert isinstance(params, dict)
    name = params.pop("builder", None)
    if not name:
        raise SystemExit("corpus.builder is required (the corpus builder's name, e.g. speech or text)")
    try:
        build = CORPUS_BUILDERS.get(str(name), where="corpus.builder")
    except UnknownName as e:
        raise SystemExit(str(e)) from e
    corpus_cfg = hydra.utils.instantiate(params, _convert_="all")
    stats = dict(build(corpus_cfg))
    print(json.dumps(stats["splits"], indent=2, ensure_ascii=False))
    log.info("corpus written to %s", corpus_cfg.out_dir)
    return stats


@hydra.main(version_base="1.3", config_path="../configs", config_name="make_corpus")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
