"""Build a generated corpus: python scripts/make_corpus.py corpus=speech [corpus.langs=[...]]"""

from __future__ import annotations

import json
import logging

import hydra
from omegaconf import DictConfig

log = logging.getLogger("make_corpus")

BUILDERS = {
    "datamodules.corpus.speech.SpeechCorpusConfig": "datamodules.corpus.speech.build_speech_corpus",
    "datamodules.corpus.text.TextCorpusConfig": "datamodules.corpus.text.build_text_corpus",
}


@hydra.main(version_base="1.3", config_path="../configs", config_name="make_corpus")
def main(cfg: DictConfig) -> None:
    target = cfg.corpus._target_
    if target not in BUILDERS:
        raise SystemExit(f"corpus._target_={target} has no builder; known: {', '.join(BUILDERS)}")
    corpus_cfg = hydra.utils.instantiate(cfg.corpus, _convert_="all")
    stats = hydra.utils.get_method(BUILDERS[target])(corpus_cfg)
    print(json.dumps(stats["splits"], indent=2, ensure_ascii=False))
    log.info("corpus written to %s", corpus_cfg.out_dir)


if __name__ == "__main__":
    main()
