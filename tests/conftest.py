from __future__ import annotations

import os
from pathlib import Path

import pytest

from datamodules.corpus.speech import SpeechCorpusConfig, build_speech_corpus

os.environ.setdefault("HYDRA_FULL_ERROR", "1")


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two languages in two scripts, a few utterances each, rendered by espeak-ng."""
    out = tmp_path_factory.mktemp("corpus")
    cfg = SpeechCorpusConfig(out_dir=str(out), langs=["deu_Latn", "ukr_Cyrl"], train_per_lang=12,
                             dev_per_lang=3, test_per_lang=3, speakers_per_lang=3, workers=2,
                             text_real_dir=str(out / "none"))  # hermetic: never the machine's data/text_real
    build_speech_corpus(cfg)
    return out
