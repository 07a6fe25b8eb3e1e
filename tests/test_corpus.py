"""The generated speech corpus: default coverage, disjoint splits, determinism, resume."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import soundfile as sf

from datamodules.corpus.languages import LANGUAGES, script
from datamodules.corpus.speech import SpeechCorpusConfig, build_speech_corpus, plan
from datamodules.corpus.text_sources import GENERATORS, in_script, sentence_list
from tests.helpers import CONFIGS, compose_cfg
from text.normalize import normalize_transcript


def test_default_config_covers_8_languages_and_4_scripts(tmp_path: Path) -> None:
    cfg = compose_cfg("make_corpus", [], tmp_path)
    langs = list(cfg.corpus.langs)
    assert len(langs) >= 8 and len({script(lang) for lang in langs}) >= 4
    assert all(len(sentence_list(lang)) >= 300 for lang in langs)
    assert (CONFIGS / "corpus" / "speech.yaml").exists()


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_every_language_has_text_in_its_own_script(lang: str) -> None:
    import random

    rng = random.Random(0)
    texts = [t for g in GENERATORS.values() for _ in range(5) if (t := g(lang, rng))] + list(sentence_list(lang))
    assert len(texts) >= 10
    letters = [normalize_transcript(t).replace(" ", "").replace("'", "") for t in texts]
    assert sum(in_script(t, lang) for t in letters if t) / len(letters) > 0.9


def _cfg(out: Path, **kw: object) -> SpeechCorpusConfig:
    args: dict[str, object] = {"out_dir": str(out), "langs": ["spa_Latn", "hin_Deva"], "train_per_lang": 15,
                               "dev_per_lang": 3, "test_per_lang": 4, "speakers_per_lang": 4, **kw}
    return SpeechCorpusConfig(**args)  # type: ignore[arg-type]


def test_plan_is_deterministic_and_splits_are_disjoint(tmp_path: Path) -> None:
    a, b = plan(_cfg(tmp_path)), plan(_cfg(tmp_path))
    assert [(j.text, j.voice, j.rate) for j in a] == [(j.text, j.voice, j.rate) for j in b]
    c = plan(_cfg(tmp_path, seed=1))
    assert [j.text for j in a] != [j.text for j in c]
    by_split: dict[str, set[str]] = {}
    for j in a:
        by_split.setdefault(j.split, set()).add(normalize_transcript(j.text))
    assert not by_split["train"] & by_split["test"] and not by_split["train"] & by_split["dev"]
    assert not by_split["dev"] & by_split["test"]
    assert len({j.speaker for j in a if j.lang == "spa_Latn"}) > 1
    assert {j.source for j in a if j.split == "test"} == {"sentences"}


def test_build_writes_manifests_and_resumes(tmp_path: Path) -> None:
    stats = build_speech_corpus(_cfg(tmp_path))
    assert stats["splits"]["train"]["utterances"] == 30
    rows = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text().splitlines()]
    assert {"audio", "text", "lang", "speaker", "duration", "source"} <= rows[0].keys()
    info = sf.info(tmp_path / rows[0]["audio"])
    assert info.samplerate == 16000 and info.channels == 1
    assert abs(info.duration - rows[0]["duration"]) < 1e-2

    # Interrupted run: one file lost. The re-run renders only that one and keeps the rest.
    lost = tmp_path / rows[1]["audio"]
    lost.unlink()
    kept = tmp_path / rows[2]["audio"]
    before = kept.stat().st_mtime_ns
    os.utime(kept, ns=(before - 10**9, before - 10**9))
    build_speech_corpus(_cfg(tmp_path))
    assert lost.exists() and kept.stat().st_mtime_ns == before - 10**9
    assert [json.loads(x) for x in (tmp_path / "train.jsonl").read_text().splitlines()] == rows


def test_user_text_file_feeds_training(tmp_path: Path) -> None:
    mine = tmp_path / "mine.txt"
    mine.write_text("una frase completamente nueva del usuario\n")
    jobs = plan(_cfg(tmp_path, text_files={"spa_Latn": str(mine)},
                     source_weights={"lexicon": 0.1}))
    assert any(j.source == "user" for j in jobs if j.split == "train")
    with pytest.raises(FileNotFoundError, match=r"nope\.txt"):
        plan(_cfg(tmp_path, text_files={"spa_Latn": str(tmp_path / "nope.txt")}))


def test_unknown_language_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="xxx_Latn"):
        plan(_cfg(tmp_path, langs=["xxx_Latn"]))
