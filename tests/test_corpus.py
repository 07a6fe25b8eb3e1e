"""The generated speech corpus: default coverage, disjoint splits, determinism, resume."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from datamodules.corpus.languages import LANGUAGES, script
from datamodules.corpus.speech import Job, SpeechCorpusConfig, build_speech_corpus, plan, render
from datamodules.corpus.text_sources import GENERATORS, in_script, sentence_list
from datamodules.corpus.voices import festival_text, festival_voices
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

    # A rebuild whose text changed (here another seed) renders what it now says, never an old file under its name,
    # and removes the renderings no row names any more.
    build_speech_corpus(_cfg(tmp_path, seed=1))
    new = [json.loads(x) for x in (tmp_path / "train.jsonl").read_text().splitlines()]
    old_by_path = {r["audio"]: r["text"] for r in rows}
    assert all(old_by_path.get(r["audio"], r["text"]) == r["text"] for r in new)
    assert any(r["audio"] not in old_by_path for r in new)
    on_disk = {p.relative_to(tmp_path).as_posix() for p in tmp_path.glob("*/*/*.wav")}
    assert on_disk == {json.loads(x)["audio"] for split in ("train", "dev", "test", "test_ood")
                       if (tmp_path / f"{split}.jsonl").exists()
                       for x in (tmp_path / f"{split}.jsonl").read_text().splitlines()}


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


# Issue 25: voice qualities, a real-text training source and an out-of-domain test split.

_REAL_TRAIN = ["El gestor de archivos no pudo abrir la carpeta compartida",
               "La descarga terminó antes de recibir todos los fragmentos",
               "Compartido en ambas fuentes y nunca en entrenamiento"]
_REAL_OOD = ["El saldo de la cuenta no coincide con el extracto bancario",
             "No se puede redimensionar la partición mientras está montada",
             "Compartido en ambas fuentes y nunca en entrenamiento",
             "Versión 2 del disco",  # digits are dropped, never spelled out
             "Раздел диска не найден сейчас"]  # outside the Spanish alphabet


def _text_real(root: Path) -> Path:
    par = root / "text_real" / "parallel"
    par.mkdir(parents=True)
    for name, sents in (("train", _REAL_TRAIN), ("test_ood", _REAL_OOD)):
        rows = [{"id": f"{name}-{i}", "texts": {"eng_Latn": "x", "spa_Latn": s}} for i, s in enumerate(sents)]
        (par / f"{name}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return root / "text_real"


def _ood_cfg(out: Path, text_real: Path, **kw: object) -> SpeechCorpusConfig:
    args: dict[str, object] = {"langs": ["spa_Latn"], "text_real_dir": str(text_real), "train_per_lang": 40,
                               "test_ood_per_lang": 5, "source_weights": {"real": 1.0, "lexicon": 0.2}, **kw}
    return _cfg(out, **args)


def test_test_ood_text_comes_from_held_out_source_and_never_trains(tmp_path: Path) -> None:
    jobs = plan(_ood_cfg(tmp_path / "out", _text_real(tmp_path)))
    ood = [j for j in jobs if j.split == "test_ood"]
    train = {normalize_transcript(j.text) for j in jobs if j.split == "train"}
    real_ood = {j.text for j in ood if j.source == "text_real_ood"}
    # Two usable held-out sentences plus the shared one; digits and Cyrillic are dropped, the rest is hand-written.
    assert real_ood == set(_REAL_OOD[:3]) and len(ood) == 5
    assert {j.source for j in ood} == {"text_real_ood", "sentences_heldout"}
    assert not {normalize_transcript(j.text) for j in ood} & train
    assert {j.text for j in jobs if j.source == "real"} == set(_REAL_TRAIN[:2])
    assert all(j.split == "train" for j in jobs if j.source == "real")


def test_missing_text_real_is_skipped_with_a_message(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO"):
        jobs = plan(_ood_cfg(tmp_path / "out", tmp_path / "nowhere"))
    assert "nowhere" in caplog.text and "corpus=text_real" in caplog.text
    assert not any(j.source == "real" for j in jobs)
    ood = [j for j in jobs if j.split == "test_ood"]
    assert len(ood) == 5 and {j.source for j in ood} == {"sentences_heldout"}
    train = {normalize_transcript(j.text) for j in jobs if j.split == "train"}
    assert not {normalize_transcript(j.text) for j in ood} & train


def test_rows_carry_voice_and_held_out_qualities_stay_out_of_training(tmp_path: Path) -> None:
    from datamodules.corpus.speech import SPLITS

    cfg = _ood_cfg(tmp_path / "out", _text_real(tmp_path), train_per_lang=8, dev_per_lang=2, test_per_lang=2,
                   test_ood_per_lang=4, speakers_per_lang=8, ood_speakers_per_lang=6)
    jobs = plan(cfg)
    held = set(cfg.heldout_qualities)
    big = plan(_ood_cfg(tmp_path / "o2", tmp_path, train_per_lang=300))
    assert not {j.quality for j in big if j.split != "test_ood"} & held
    assert {j.quality for j in jobs if j.split == "test_ood"} <= held
    assert len({j.quality for j in jobs if j.split == "train"}) >= 4
    build_speech_corpus(cfg)
    for split in SPLITS:
        rows = [json.loads(x) for x in (tmp_path / "out" / f"{split}.jsonl").read_text().splitlines()]
        assert rows and all(r["speaker"] and r["lang"] == "spa_Latn" and r["voice_quality"] for r in rows)
        assert all(sf.info(tmp_path / "out" / r["audio"]).duration > 0.3 for r in rows)
        if split in ("train", "dev"):
            assert not {r["voice_quality"] for r in rows} & held
    assert (tmp_path / "out" / "test_ood.jsonl").exists()


def test_whisper_share_whispers_training_only_and_leaves_the_other_splits(tmp_path: Path) -> None:
    text_real = _text_real(tmp_path)
    plain = plan(_ood_cfg(tmp_path / "a", text_real, train_per_lang=60))
    cfg = _ood_cfg(tmp_path / "b", text_real, train_per_lang=60, whisper_share=0.3)
    jobs = plan(cfg)
    whispered = [j for j in jobs if j.whisper is not None]
    assert 8 <= len(whispered) <= 30 and {j.split for j in whispered} == {"train"}
    assert {j.quality for j in whispered} == {"lpc_whisper"} and all(j.rel_audio.endswith("_w.wav") for j in whispered)
    # Everything else, the held-out splits included, exactly as without it.
    key = [(j.split, j.idx, j.text, j.sp, j.rate) for j in plain]
    assert key == [(j.split, j.idx, j.text, j.sp, j.rate) for j in jobs]
    one = whispered[0]
    row = render(one, tmp_path / "b")
    assert row["voice_quality"] == "lpc_whisper" and row["audio"] == one.rel_audio
    wav, _ = sf.read(tmp_path / "b" / one.rel_audio)
    assert 0 < np.abs(wav).max() <= 1.0
    with pytest.raises(ValueError, match="whisper_share"):
        plan(_ood_cfg(tmp_path / "c", text_real, whisper_share=1.5))


def test_whisper_voicing_keeps_the_rows_and_names_its_files(tmp_path: Path) -> None:
    text_real = _text_real(tmp_path)
    pure = plan(_ood_cfg(tmp_path / "a", text_real, train_per_lang=60, whisper_share=0.3))
    cfg = _ood_cfg(tmp_path / "b", text_real, train_per_lang=60, whisper_share=0.3, whisper_voicing=[0.1, 0.3])
    jobs = plan(cfg)
    # The same rows are whispered with the same tilts; only the kept voicing (and so the file name) differs.
    assert [(j.idx, j.whisper) for j in pure] == [(j.idx, j.whisper) for j in jobs]
    whispered = [j for j in jobs if j.whisper is not None]
    assert all(0.1 <= j.voicing <= 0.3 and j.rel_audio.endswith("_w.wav") for j in whispered)
    assert all(a.rel_audio != b.rel_audio for a, b in zip(pure, jobs) if a.whisper is not None)
    i = next(k for k, j in enumerate(jobs) if j.whisper is not None)
    def wave(job: Job, root: Path) -> np.ndarray:
        return sf.read(str(root / render(job, root)["audio"]))[0]

    voiced, noise = wave(jobs[i], tmp_path / "b"), wave(pure[i], tmp_path / "a")
    plain = wave(replace(jobs[i], whisper=None, voicing=0.0), tmp_path / "b")
    # The voiced share pulls the rendering towards the plain one.
    n = min(len(voiced), len(noise), len(plain))
    assert np.corrcoef(voiced[:n], plain[:n])[0, 1] > np.corrcoef(noise[:n], plain[:n])[0, 1] + 0.05
    with pytest.raises(ValueError, match="whisper_voicing"):
        plan(_ood_cfg(tmp_path / "c", text_real, whisper_share=0.3, whisper_voicing=[0.5, 0.2]))


def test_festival_text_keeps_letters_marks_and_plain_punctuation_in_the_voice_encoding() -> None:
    assert festival_text("Èra già — «così»", "latin-1") == "Èra già    così ".encode("latin-1")
    assert festival_text("नमस्ते, दुनिया!", "utf-8").decode() == "नमस्ते, दुनिया!"  # vowel signs are marks: kept
    assert festival_text("Ω ok", "latin-1") == b" ok"  # letters the encoding lacks are dropped


@pytest.mark.skipif(len(festival_voices("ita_Latn")) < 2, reason="festival's two Italian diphone voices not installed")
def test_recorded_share_gives_training_rows_festival_voices_but_never_the_held_out_one(tmp_path: Path) -> None:
    text_real = _text_real(tmp_path)
    kw: dict[str, object] = {"langs": ["ita_Latn"], "train_per_lang": 60}
    plain = plan(_ood_cfg(tmp_path / "a", text_real, recorded_share=0.0, **kw))
    jobs = plan(_ood_cfg(tmp_path / "b", text_real, recorded_share=0.4, recorded_speakers_per_lang=3, **kw))
    recorded = [j for j in jobs if j.quality == "recorded"]
    assert 12 <= len(recorded) <= 40 and {j.split for j in recorded} == {"train"}
    assert {j.sp.variant for j in recorded} == {"pc_diphone"} and len({j.sp.name for j in recorded}) == 3
    # Every other row, the held-out splits included, exactly as without them; the sentences never move.
    assert [(j.split, j.idx, j.text) for j in plain] == [(j.split, j.idx, j.text) for j in jobs]
    assert all(a.rel_audio == b.rel_audio for a, b in zip(plain, jobs) if b.quality != "recorded")
    both = plan(_ood_cfg(tmp_path / "c", text_real, recorded_share=0.4, recorded_heldout=[], **kw))
    assert {j.sp.variant for j in both if j.quality == "recorded"} == {"pc_diphone", "lp_diphone"}
    # A language without festival voices is as with recorded_share 0.
    spanish = plan(_ood_cfg(tmp_path / "d", text_real, recorded_share=0.4))
    assert not [j for j in spanish if j.quality == "recorded"]
    one = recorded[0]
    row = render(one, tmp_path / "b")
    assert row["voice_quality"] == "recorded" and row["voice"] == "pc_diphone" and row["rate"] == one.sp.rate
    wav = sf.read(str(tmp_path / "b" / row["audio"]))[0]
    own = sf.read(str(tmp_path / "a" / render(plain[jobs.index(one)], tmp_path / "a")["audio"]))[0]
    assert np.abs(wav).max() > 0.05 and 0.4 < len(wav) / len(own) < 2.5
    with pytest.raises(ValueError, match="recorded_speakers_per_lang"):
        plan(_ood_cfg(tmp_path / "e", text_real, recorded_share=0.3, recorded_speakers_per_lang=0))


def test_varied_share_gives_training_rows_new_espeak_voices_and_leaves_the_rest(tmp_path: Path) -> None:
    import re

    text_real = _text_real(tmp_path)
    plain = plan(_ood_cfg(tmp_path / "a", text_real, train_per_lang=60))
    cfg = _ood_cfg(tmp_path / "b", text_real, train_per_lang=60, varied_share=0.4, varied_speakers_per_lang=5)
    jobs = plan(cfg)
    varied = [j for j in jobs if j.quality == "varied"]
    assert 12 <= len(varied) <= 40 and {j.split for j in varied} == {"train"}
    assert len({j.sp.name for j in varied}) <= 5 and len({j.sp.variant for j in varied}) >= 3
    # Every other row, the held-out splits included, exactly as without them; the sentences never move.
    assert [(j.split, j.idx, j.text) for j in plain] == [(j.split, j.idx, j.text) for j in jobs]
    assert all(a.rel_audio == b.rel_audio for a, b in zip(plain, jobs) if b.quality != "varied")
    for j in varied:
        voicing = re.search(r"^voicing (\d+)$", j.sp.variant_def, re.M)
        assert voicing is None or cfg.varied_voicing[0] <= int(voicing.group(1)) <= cfg.varied_voicing[1]
        assert not re.search(r"^klatt [4-6]$", j.sp.variant_def, re.M)  # nor the held-out klatt_hi synthesisers
    one = varied[0]
    row = render(one, tmp_path / "b")
    assert row["voice_quality"] == "varied" and row["voice"] == one.sp.variant
    assert (row["rate"], row["pitch"]) == (one.sp.rate, one.sp.pitch) and 140 <= row["rate"] <= 185
    wav = sf.read(str(tmp_path / "b" / row["audio"]))[0]
    own = sf.read(str(tmp_path / "a" / render(plain[jobs.index(one)], tmp_path / "a")["audio"]))[0]
    assert np.abs(wav).max() > 0.05 and 0.5 < len(wav) / len(own) < 2.0
    assert len(wav) != len(own) or not np.allclose(wav, own)
    with pytest.raises(ValueError, match="varied_share"):
        plan(_ood_cfg(tmp_path / "c", text_real, varied_share=-0.1))
    with pytest.raises(ValueError, match="varied_speakers_per_lang"):
        plan(_ood_cfg(tmp_path / "c", text_real, varied_share=0.3, varied_speakers_per_lang=0))
    with pytest.raises(ValueError, match="varied_voicing"):
        plan(_ood_cfg(tmp_path / "c", text_real, varied_share=0.3, varied_voicing=[60, 20]))
    with pytest.raises(ValueError, match="varied_rate"):
        plan(_ood_cfg(tmp_path / "c", text_real, varied_share=0.3, varied_rate=[250, 100]))
    with pytest.raises(ValueError, match="varied_pitch"):
        plan(_ood_cfg(tmp_path / "c", text_real, varied_share=0.3, varied_pitch=[0, 120]))
    fast = plan(_ood_cfg(tmp_path / "d", text_real, train_per_lang=60, varied_share=0.4, varied_rate=[200, 210],
                         varied_pitch=[0, 10]))
    assert {j.sp.pitch for j in fast if j.quality == "varied"} <= set(range(0, 11))
    assert {j.sp.pitch for j in fast if j.quality not in ("varied", "extreme_prosody")} <= set(range(25, 76))
    assert {j.sp.rate for j in fast if j.quality == "varied"} <= set(range(200, 211))


def test_varied_voicing_sets_the_breathing_voices_voicing_and_breath_grows_below_45() -> None:
    import random
    import re

    from datamodules.corpus.voices import random_variant

    defs = [random_variant(random.Random(k), (15, 25)) for k in range(40)]
    breathing = [d for d in defs if "voicing" in d]
    assert 10 <= len(breathing) <= 30  # about half of the voices breathe
    for d in breathing:
        voicing = int(re.search(r"^voicing (\d+)$", d, re.M).group(1))  # type: ignore[union-attr]
        breath = int(re.search(r"^breath (\d+)", d, re.M).group(1))  # type: ignore[union-attr]
        assert 15 <= voicing <= 25 and 10 + 45 - voicing <= breath <= 50 + 45 - voicing
    # At or above 45% the variant is what it was before the range was a setting: the breath stays 10-50.
    for k in range(40):
        d = random_variant(random.Random(k), (45, 90))
        if "voicing" in d:
            assert 45 <= int(re.search(r"^voicing (\d+)$", d, re.M).group(1)) <= 90  # type: ignore[union-attr]
            assert 10 <= int(re.search(r"^breath (\d+)", d, re.M).group(1)) <= 50  # type: ignore[union-attr]
