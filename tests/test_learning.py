"""The model learns: CER on held-out sentences (never trained on) falls well below chance."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamodules.corpus.speech import SpeechCorpusConfig, build_speech_corpus
from tests.helpers import compose_cfg, load_script


@pytest.mark.slow
def test_held_out_cer_improves(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    build_speech_corpus(SpeechCorpusConfig(out_dir=str(corpus), langs=["spa_Latn"], train_per_lang=400,
                                           dev_per_lang=20, test_per_lang=20, speakers_per_lang=3))
    overrides = [
        f"data.train_manifest={corpus}/train.jsonl", f"data.val_manifest={corpus}/dev.jsonl",
        f"data.test_manifest={corpus}/test.jsonl", "experiment=asr_lowres", "trainer.max_time=00:00:06:00",
        "trainer.accelerator=cpu", "data.num_workers=1", "logger=csv", "callbacks.progress_bar=null",
        "trainer.enable_progress_bar=false", "export=false",
    ]
    metrics = load_script("train").train(compose_cfg("train", overrides, tmp_path / "run"))
    # Test sentences are hand-written ones that no training text repeats; an untrained model scores 100%.
    assert metrics["test/cer"] < 0.5, metrics
