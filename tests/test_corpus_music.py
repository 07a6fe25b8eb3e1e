"""The generated music corpus: real forms that abc2midi and music21 read, rendered files, held-out tunes and
combinations, and descriptions in seven languages."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from datamodules.corpus import music as music_corpus
from datamodules.corpus.music import SPLITS, MusicCorpusConfig, build_music_corpus, holdout, sample_attributes
from datamodules.corpus.music_abc import tune_abc
from datamodules.corpus.music_compose import CONTOURS, compose, melody_steps
from datamodules.corpus.music_forms import FORMS
from datamodules.corpus.music_lexicon import ENG
from datamodules.corpus.music_render import RenderError
from datamodules.corpus.music_text import LANGS, LEXICONS, describe
from datamodules.corpus.music_theory import KEYS, REGISTERS, Key, Note

music21 = pytest.importorskip("music21")
pytestmark = pytest.mark.skipif(shutil.which("abc2midi") is None or shutil.which("fluidsynth") is None,
                                reason="abc2midi and fluidsynth (Debian abcmidi, fluidsynth) are needed")
ATTRIBUTES = ("key", "mode", "meter", "tempo", "genre", "instrument", "contour", "register", "dynamics")


def _tiny(out: Path, **kw: Any) -> MusicCorpusConfig:
    base: dict[str, Any] = {"out_dir": str(out), "train": 8, "dev": 2, "test": 3, "test_combo": 3, "workers": 2}
    return MusicCorpusConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[dict[str, Any]]]]:
    root = tmp_path_factory.mktemp("music")
    build_music_corpus(_tiny(root))
    rows = {s: [json.loads(line) for line in (root / f"{s}.jsonl").read_text(encoding="utf-8").splitlines()]
            for s in SPLITS}
    return root, rows


def _parse(root: Path, row: dict[str, Any]) -> Any:
    return music21.converter.parse(str(root / row["abc"]), format="abc")


def test_rows_have_files_attributes_and_texts(corpus: tuple[Path, dict[str, list[dict[str, Any]]]]) -> None:
    root, rows = corpus
    assert [len(rows[s]) for s in SPLITS] == [8, 2, 3, 3]
    stats = json.loads((root / "corpus.json").read_text(encoding="utf-8"))
    assert stats["failed"] == 0 and stats["langs"] == list(LANGS)
    for row in (r for s in SPLITS for r in rows[s]):
        for kind in ("abc", "midi", "audio"):
            assert (root / row[kind]).stat().st_size > 0, row[kind]
        assert set(ATTRIBUTES) <= set(row["attributes"])
        assert len(row["texts"]) >= 6 and all(len(t.split()) >= 4 for t in row["texts"].values())
        wav, sr = sf.read(str(root / row["audio"]))
        assert sr == 16000 and wav.ndim == 1 and 1.0 < len(wav) / sr <= 12.0
        assert np.abs(wav).max() > 0.01


def test_held_out_tunes_and_combinations_do_not_leak(corpus: tuple[Path, dict[str, list[dict[str, Any]]]]) -> None:
    root, rows = corpus
    body = {s: {(root / r["abc"]).read_text(encoding="utf-8").split("\nK:", 1)[1] for r in rows[s]} for s in SPLITS}
    for s in ("dev", "test", "test_combo"):
        assert not body[s] & body["train"]
    held = {(c["genre"], c["key"], c["mode"]) for c in json.loads((root / "corpus.json").read_text())
            ["held_out_combos"]}
    combo = {s: {(r["attributes"]["genre"], r["attributes"]["key"], r["attributes"]["mode"]) for r in rows[s]}
             for s in SPLITS}
    assert combo["test_combo"] <= held
    assert not held & (combo["train"] | combo["dev"] | combo["test"])
    # held-out combinations also stay out of a large training draw, and each genre is still trained on
    cfg = _tiny(root, train=400)
    train = music_corpus.plan(cfg)["train"]
    assert not held & {(j["attributes"]["genre"], j["attributes"]["key"], j["attributes"]["mode"]) for j in train}
    assert {j["attributes"]["genre"] for j in train} == set(FORMS)
    assert holdout(cfg) == holdout(cfg)


def test_music21_reads_every_tune_and_agrees_with_the_attributes(
        corpus: tuple[Path, dict[str, list[dict[str, Any]]]]) -> None:
    root, rows = corpus
    signature_agrees, major_minor = 0, 0
    for row in (r for s in SPLITS for r in rows[s]):
        a = row["attributes"]
        score = _parse(root, row)
        ks = score.recurse().getElementsByClass("KeySignature")[0]
        ts = score.recurse().getElementsByClass("TimeSignature")[0]
        assert ts.ratioString == a["meter"], row["id"]
        assert (ks.tonic.name.replace("-", "b"), ks.mode) == (a["key"], a["mode"]), row["id"]
        parts = list(score.parts) or [score]
        assert len(parts) == FORMS[a["genre"]].voices, row["id"]
        for part in parts:  # AABB of 8-bar parts, and every bar is full
            measures = list(part.getElementsByClass("Measure"))
            assert len(measures) == 16, row["id"]
            assert all(m.duration.quarterLength == ts.barDuration.quarterLength for m in measures), row["id"]
        melody = [n for n in parts[0].flatten().notes if not isinstance(n, music21.harmony.ChordSymbol)]
        assert melody[-1].pitch.pitchClass == Key(a["key"], a["mode"]).tonic_pc, row["id"]  # ends on the tonic
        if a["mode"] in ("major", "minor"):
            major_minor += 1
            signature_agrees += score.analyze("key").sharps == ks.sharps
    assert major_minor >= 5 and signature_agrees >= 0.75 * major_minor


def test_every_form_in_every_mode_renders_with_abc2midi(tmp_path: Path) -> None:
    for genre, form in FORMS.items():
        for mode in ("major", "minor") if form.voices == 4 else tuple(KEYS):
            attrs = sample_attributes(random.Random(genre + mode), (genre, KEYS[mode][-1], mode))
            abc = tmp_path / f"{genre}-{mode}.abc"
            abc.write_text(tune_abc(compose(attrs, 1)), encoding="utf-8")
            out = subprocess.run(["abc2midi", str(abc), "-o", str(tmp_path / "x.mid"), "-NFER"],
                                 capture_output=True, text=True)
            assert out.returncode == 0 and "rror" not in out.stdout + out.stderr, (genre, mode, out.stdout)


def test_abc2midi_output_is_deterministic(corpus: tuple[Path, dict[str, list[dict[str, Any]]]],
                                          tmp_path: Path) -> None:
    root, rows = corpus
    row = rows["train"][0]
    for name in ("a.mid", "b.mid"):
        subprocess.run(["abc2midi", str(root / row["abc"]), "-o", str(tmp_path / name), "-NFER"], check=True,
                       capture_output=True)
    assert (tmp_path / "a.mid").read_bytes() == (tmp_path / "b.mid").read_bytes()
    assert (tmp_path / "a.mid").read_bytes() == (root / row["midi"]).read_bytes()


def _halves(steps: list[int]) -> tuple[float, float, float]:
    third = len(steps) // 3
    return float(np.mean(steps[:third])), float(np.mean(steps[third:-third])), float(np.mean(steps[-third:]))


def test_contour_and_register_are_audible_in_the_melody() -> None:
    rng = random.Random(0)
    hits = {c: 0 for c in CONTOURS}
    n = 12
    for contour in CONTOURS:
        for i in range(n):
            attrs = {**sample_attributes(rng), "contour": contour}
            tune = compose(attrs, i)
            start, middle, end = _halves(melody_steps(tune, "A"))
            hits[contour] += {"ascending": end > start + 1, "descending": start > end + 1,
                              "arch": middle > max(start, end), "valley": middle < min(start, end)}[contour]
            lo, hi = REGISTERS[attrs["register"]]
            if FORMS[attrs["genre"]].voices == 1:
                pitches = [tune.key.midi(Note(s, n.dur)) for b in tune.parts["A"] for n in b.voices[0]
                           for s in [n.step] if s is not None]
                assert lo <= min(pitches) and max(pitches) <= hi + 1
    assert all(h >= 0.8 * n for h in hits.values()), hits


def test_descriptions_state_the_meaning_in_every_language_with_varied_phrasing() -> None:
    rng = random.Random(1)
    firsts: dict[str, set[str]] = {lang: set() for lang in LANGS}
    texts_seen: set[str] = set()
    for i in range(60):
        attrs = sample_attributes(rng)
        meaning, texts = describe(attrs, LANGS, i)
        assert set(texts) == set(LANGS) and len(meaning.facets) >= 3
        for lang, text in texts.items():
            lex = LEXICONS[lang]
            assert lex["genre"][attrs["genre"]][1].casefold() in text.casefold(), (lang, text)
            if "key" in meaning.facets:
                assert lex["tonic"][attrs["key"]].casefold() in text.casefold(), (lang, text)
            if "meter" in meaning.facets:
                assert attrs["meter"] in text, (lang, text)
            assert "{" not in text and "  " not in text, (lang, text)
            firsts[lang].add(" ".join(text.split()[:2]))
            texts_seen.add(text)
    assert all(len(f) >= 3 for f in firsts.values()), firsts
    assert len(texts_seen) == 60 * len(LANGS)
    assert describe(attrs, LANGS, 5) == describe(attrs, LANGS, 5)
    assert ENG["instr"]["Violin"]  # the instrument the forms use most has a name


def test_bad_languages_and_failed_renders_are_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(KeyError, match="xxx_Latn"):
        build_music_corpus(_tiny(tmp_path / "bad", langs=["eng_Latn", "xxx_Latn"]))
    real = music_corpus.midi_to_audio

    def broken(mid: Path, out: Path, name: str, *args: Any) -> float:
        if "train-00001" in name:
            raise RenderError(f"{name}: fluidsynth failed: test")
        return real(mid, out, name, *args)

    monkeypatch.setattr(music_corpus, "midi_to_audio", broken)
    cfg = _tiny(tmp_path / "c", train=3, dev=1, test=1, test_combo=1, workers=1)
    stats = build_music_corpus(cfg)
    assert stats["failed"] == 1 and stats["splits"]["train"]["tunes"] == 2
    failed = [json.loads(x) for x in (tmp_path / "c" / "failed.jsonl").read_text().splitlines()]
    assert failed[0]["id"] == "train-00001" and "train-00001.abc" in failed[0]["error"]
    # a re-run renders only what is missing and keeps the finished files
    monkeypatch.setattr(music_corpus, "midi_to_audio", real)
    kept = tmp_path / "c" / "midi" / "train-00000.mid"
    before = kept.stat().st_mtime_ns
    stats = build_music_corpus(MusicCorpusConfig(**{**cfg.__dict__, "overwrite": True}))
    assert stats["failed"] == 0 and stats["splits"]["train"]["tunes"] == 3
    assert kept.stat().st_mtime_ns == before
