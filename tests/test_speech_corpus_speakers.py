"""Held-out speakers in the speech corpus: dev and test voices that training never hears (corpus=speech_tts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datamodules.corpus.speech import SpeechCorpusConfig, build_speech_corpus, plan
from datamodules.corpus.voices import QUALITIES
from tests.helpers import compose_cfg


def _cfg(out: Path, **kw: object) -> SpeechCorpusConfig:
    args: dict[str, object] = {"out_dir": str(out), "langs": ["spa_Latn", "hin_Deva"], "train_per_lang": 15,
                               "dev_per_lang": 6, "test_per_lang": 6, "test_ood_per_lang": 3, "speakers_per_lang": 4,
                               "text_real_dir": str(out / "none"), **kw}
    return SpeechCorpusConfig(**args)  # type: ignore[arg-type]


def _speakers(jobs: list, split: str, lang: str | None = None) -> set[str]:
    return {j.speaker for j in jobs if j.split == split and (lang is None or j.lang == lang)}


def test_default_shares_speakers_and_the_option_holds_them_out(tmp_path: Path) -> None:
    default = plan(_cfg(tmp_path))
    assert _speakers(default, "dev") | _speakers(default, "test") <= _speakers(default, "train")

    held = plan(_cfg(tmp_path, heldout_speakers_per_lang=2))
    for lang in ("spa_Latn", "hin_Deva"):
        train, dev, test = (_speakers(held, s, lang) for s in ("train", "dev", "test"))
        assert dev == {f"{lang}-dev00", f"{lang}-dev01"} and test == {f"{lang}-tst00", f"{lang}-tst01"}
        assert not train & (dev | test)
    # Each held-out speaker gets an equal share, and all speak training qualities (test_ood keeps the held-out ones).
    assert sorted(j.speaker for j in held if j.split == "dev" and j.lang == "spa_Latn").count("spa_Latn-dev00") == 3
    assert {j.quality for j in held if j.split in ("dev", "test")} <= set(_cfg(tmp_path).qualities)
    assert all(j.quality in QUALITIES for j in held)

    # Train and test_ood are the very same utterances in the same voices; dev and test keep their text.
    def key(j: object) -> tuple:
        return (j.split, j.lang, j.text, j.speaker, j.rate)  # type: ignore[attr-defined]

    assert [key(j) for j in held if j.split in ("train", "test_ood")] == \
        [key(j) for j in default if j.split in ("train", "test_ood")]
    assert [j.text for j in held] == [j.text for j in default]
    assert plan(_cfg(tmp_path, heldout_speakers_per_lang=2)) == held  # deterministic

    with pytest.raises(ValueError, match="heldout_speakers_per_lang"):
        plan(_cfg(tmp_path, heldout_speakers_per_lang=-1))


def test_tiny_build_has_no_training_speaker_in_dev_or_test(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, langs=["deu_Latn"], train_per_lang=6, dev_per_lang=3, test_per_lang=3,
               test_ood_per_lang=1, speakers_per_lang=3, heldout_speakers_per_lang=2)
    stats = build_speech_corpus(cfg)
    assert stats["config"]["heldout_speakers_per_lang"] == 2

    def rows(split: str) -> list[dict]:
        return [json.loads(line) for line in (tmp_path / f"{split}.jsonl").read_text().splitlines()]

    train = {r["speaker"] for r in rows("train")}
    dev, test = {r["speaker"] for r in rows("dev")}, {r["speaker"] for r in rows("test")}
    assert train and dev and test and not train & (dev | test) and not dev & test
    assert all(r["lang"] == "deu_Latn" and (tmp_path / r["audio"]).is_file() for r in rows("dev") + rows("test"))


def test_speech_tts_preset_is_the_speech_corpus_with_held_out_speakers_and_no_added_voices(tmp_path: Path) -> None:
    speech = compose_cfg("make_corpus", [], tmp_path).corpus
    tts = compose_cfg("make_corpus", ["corpus=speech_tts"], tmp_path).corpus
    assert speech.heldout_speakers_per_lang == 0 and tts.heldout_speakers_per_lang == 4
    assert tts.builder == "speech" and tts.out_dir.endswith("speech_tts")
    differ = {k for k in speech if speech[k] != tts[k]}
    assert differ == {"out_dir", "heldout_speakers_per_lang", "varied_share", "recorded_share"}
    assert speech.varied_share > 0 and tts.varied_share == 0  # random espeak-ng variants help ASR, not voice cloning
    assert speech.recorded_share > 0 and tts.recorded_share == 0  # the TTS corpus keeps its voices
