"""Deepfake corpus: labels on every row, protocols that hold out what they claim, resume, and clear messages."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

import datamodules.corpus.deepfake_sources as sources
from datamodules.corpus.deepfake import available_sources, build_deepfake_corpus, plan
from datamodules.corpus.deepfake_audio import TARGET_DBFS, active_rms_db, shortcut_report
from datamodules.corpus.deepfake_config import DeepfakeCorpusConfig
from datamodules.corpus.deepfake_plan import Clip, text_pools
from datamodules.corpus.deepfake_render import Failed, render
from datamodules.corpus.deepfake_sources import Prosody, festival_installed, render_text
from speech.audio import write_audio

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("flite") is None,
                                reason="espeak-ng and flite are needed")
KEYS = {"id", "audio", "source", "family", "lang", "speaker", "channel", "text", "duration"}


def _cfg(out: Path, **kw: Any) -> DeepfakeCorpusConfig:
    base: dict[str, Any] = dict(
        out_dir=str(out), langs=["eng_Latn", "deu_Latn"], sources=["espeak_ng", "flite_diphone", "world_resynth",
                                                                   "suite_tts_vocos"],
        clips_per_source_per_lang=6, channels={"clean": 0.5, "mp3_24k": 0.25, "noise_snr15": 0.25},
        heldout_channels=["opus_16k"], heldout_langs=["deu_Latn"], heldout_speakers=["espeak:m3", "espeak:f2"],
        heldout_sources=["flite_diphone"], unseen_speaker_share=0.25, unseen_channel_share=0.25,
        split_shares={"train": 0.5, "dev": 0.1, "test": 0.4}, duration=(1.0, 1.6), pause=(0.05, 0.15),
        tts_bundles={"suite_tts_vocos": str(out / "no_bundle")})
    base.update(kw)
    return DeepfakeCorpusConfig(**base)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], DeepfakeCorpusConfig]:
    out = tmp_path_factory.mktemp("deepfake")
    # Stand-in "real speech": a few recordings of two people, in a manifest as a user would bring it.
    real = out.parent / "real"
    lines = []
    for i in range(6):
        wav = render_text("espeak:m7" if i % 2 else "espeak:f4", "eng_Latn", "This is my own voice, recorded today "
                          "at home in the kitchen.", Prosody(), 0)
        write_audio(real / f"r{i}.wav", wav)
        lines.append(json.dumps({"audio": f"r{i}.wav", "lang": "eng_Latn", "speaker": f"p{i % 2}", "text": "x"}))
    (real / "real.jsonl").write_text("\n".join(lines) + "\n")
    cfg = _cfg(out, bonafide_manifests=[str(real / "real.jsonl")])
    return out, build_deepfake_corpus(cfg), cfg


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_rows_carry_every_label_and_audio_is_shaped(corpus: tuple[Path, dict[str, Any], Any]) -> None:
    out, stats, cfg = corpus
    rows = _rows(out / "all.jsonl")
    assert stats["failed"]["count"] == 0 and len(rows) == stats["clips"] > 25
    assert {r["source"] for r in rows} == {"espeak_ng", "flite_diphone", "world_resynth", "bonafide"}
    families = {r["source"]: r["family"] for r in rows}
    assert families == {"espeak_ng": "formant", "flite_diphone": "diphone", "world_resynth": "vocoder_resynthesis",
                        "bonafide": "bonafide"}
    for r in rows:
        assert set(r) == KEYS and all(r[k] not in ("", None) for k in KEYS - {"text"}), r
        wave, sr = sf.read(str(out / r["audio"]), dtype="float32")
        assert sr == 16_000 and wave.ndim == 1 and abs(len(wave) / sr - r["duration"]) < 1e-3
        # Length is drawn per clip whatever the source (cut at a quiet point up to 0.3 s early); level is fixed.
        assert cfg.duration[0] - 0.31 <= r["duration"] <= cfg.duration[1] + 0.01, r
        if r["channel"] == "clean":
            assert abs(active_rms_db(wave) - TARGET_DBFS) < 1.0 and np.abs(wave).max() <= 0.951
    assert all(r["speaker"].startswith("flite:") for r in rows if r["source"] == "flite_diphone")
    assert {r["speaker"] for r in rows if r["source"] == "bonafide"} == {"bonafide:p0", "bonafide:p1"}


def test_protocols_hold_out_what_they_claim(corpus: tuple[Path, dict[str, Any], Any]) -> None:
    out, stats, cfg = corpus
    proto = {p.name: p for p in (out / "protocols").iterdir()}
    assert set(proto) == {"main", "mono", "cross_lingual", "lolo", "unseen_speaker", "unseen_channel",
                          "unseen_generator"}
    main_train = _rows(proto["main"] / "train.jsonl")
    assert main_train and all(
        r["lang"] not in cfg.heldout_langs and r["speaker"] not in cfg.heldout_speakers
        and r["channel"] not in cfg.heldout_channels and r["source"] not in cfg.heldout_sources for r in main_train)
    train_text = {r["text"] for r in main_train}
    for name, folder in proto.items():
        meta = json.loads((folder / "protocol.json").read_text())
        train, test = _rows(folder / "train.jsonl"), _rows(folder / "test.jsonl")
        assert meta["name"] == name and meta["known_sources"] == sorted({r["source"] for r in train})
        assert "suite_tts_vocos" in meta["sources_left_out"] and meta["binary_available"]
        assert not train_text & {r["text"] for r in test if r["source"] != "bonafide"}, name
        held = meta["held_out"]
        if meta["task"] == "closed_set":
            assert test and {r["source"] for r in test} <= set(meta["known_sources"]), name
        for key, field in (("langs", "lang"), ("speakers", "speaker"), ("channels", "channel")):
            if key in held:  # the test isolates the held-out factor, and training never meets it
                assert all(r[field] in held[key] for r in test), name
                assert not {r[field] for r in train} & set(held[key]), name
    gen = json.loads((proto["unseen_generator"] / "protocol.json").read_text())
    test = _rows(proto["unseen_generator"] / "test.jsonl")
    assert gen["task"] == "open_set" and gen["train_from"] == "main"
    assert {r["source"] for r in test} - set(gen["known_sources"]) == {"flite_diphone"}
    assert {r["lang"] for r in _rows(proto["mono"] / "train.jsonl")} == {cfg.mono_lang}
    assert stats["splits"]["unseen_generator"]["test_unknown"] == 6


def test_rerun_resumes_without_rendering_again(corpus: tuple[Path, dict[str, Any], Any]) -> None:
    out, stats, cfg = corpus
    wavs = sorted(out.glob("clips/*/*/*.wav"))
    stamp = {p: p.stat().st_mtime_ns for p in wavs}
    victim = wavs[0]
    victim.unlink()
    again = build_deepfake_corpus(cfg)
    assert victim.exists() and again["clips"] == stats["clips"]
    assert all(p.stat().st_mtime_ns == t for p, t in stamp.items() if p != victim)
    assert (out / "all.jsonl").read_text() == "".join(json.dumps(r, ensure_ascii=False) + "\n"
                                                      for r in _rows(out / "all.jsonl"))


def test_missing_tool_or_bundle_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _cfg(tmp_path, sources=["espeak_ng", "festival_diphone", "suite_tts_gl"],
               tts_bundles={"suite_tts_gl": str(tmp_path / "nowhere")})
    monkeypatch.setattr(sources.shutil, "which", lambda tool: None if tool == "text2wave" else "/usr/bin/" + tool)
    usable, left_out = available_sources(cfg)
    assert list(usable) == ["espeak_ng"]
    assert "text2wave is not installed" in left_out["festival_diphone"]
    assert "nowhere not found" in left_out["suite_tts_gl"]
    monkeypatch.setattr(sources.shutil, "which", lambda tool: None)
    with pytest.raises(RuntimeError, match=r"nothing to render.*espeak-ng is not installed"):
        plan(cfg)


def test_a_failing_generator_is_reported_not_fatal(tmp_path: Path) -> None:
    clip = Clip("x", "festival_diphone", "eng_Latn", "festival:no_such_voice", "clean", "main", "train",
                "Hello there.", [], 2.0, 0.1, 0.1, 0)
    res = render(clip, str(tmp_path), 1.0)
    assert isinstance(res, Failed) and "no_such_voice" in res.reason and res.reason.startswith(clip.audio)


def test_language_without_text_asks_for_a_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"text_files\.ces_Latn"):
        text_pools(_cfg(tmp_path, langs=["ces_Latn"]), "ces_Latn", 10)
    sentences = tmp_path / "ces.txt"
    numbers = ["jedna", "dva", "tři", "čtyři", "pět", "šest", "sedm", "osm", "devět", "deset", "jedenáct", "dvanáct"]
    sentences.write_text("\n".join(f"Věta číslo {n} je krátká." for n in numbers))
    pools = text_pools(_cfg(tmp_path, langs=["ces_Latn"], text_files={"ces_Latn": str(sentences)}), "ces_Latn", 10)
    assert sum(map(len, pools.values())) == 12 and all(pools.values())


@pytest.mark.skipif(not festival_installed("kal_diphone"), reason="festival's kal_diphone voice is not installed")
def test_festival_voices_speak() -> None:
    wave = render_text("festival:kal_diphone", "eng_Latn", "Good morning to you all.", Prosody(), 0)
    assert wave.dtype == np.float32 and len(wave) > 16_000 and np.abs(wave).max() > 0.05
    if festival_installed("lp_diphone"):  # Italian voices read Latin-1: accented letters must not be spelled out
        short = render_text("festival:lp_diphone", "ita_Latn", "La città è bella.", Prosody(), 0)
        assert 0.5 * 16_000 < len(short) < 2.5 * 16_000


def test_shortcut_report_flags_a_revealing_cue() -> None:
    rng = np.random.default_rng(0)

    def rows(n: int) -> list[dict[str, Any]]:
        out = []
        for i in range(n):
            s = ["a", "b", "c"][i % 3]
            out.append({"source": s, "duration": {"a": 2.0, "b": 3.0, "c": 4.0}[s] + rng.uniform(0, 0.5),
                        "level_db": -24 + rng.normal(0, 0.1), "lead_s": rng.uniform(0.05, 0.3)})
        return out

    report = shortcut_report(rows(300), rows(150))
    assert report["accuracy_from_one_cue"]["duration"] > 0.9
    assert report["accuracy_from_one_cue"]["level_db"] < 0.5 and abs(report["chance"] - 1 / 3) < 0.01


def test_tts_bundle_languages_and_broken_bundles(tmp_path: Path) -> None:
    from datamodules.corpus.deepfake_tts import bundle_langs

    model = tmp_path / "acoustic"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "tts_flow", "langs": ["ita_Latn", "deu_Latn"]}))
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "bundle.json").write_text(json.dumps({"type": "tts_bundle", "acoustic": "../acoustic"}))
    assert bundle_langs(str(bundle)) == ["ita_Latn", "deu_Latn"] and bundle_langs(str(model)) == ["ita_Latn",
                                                                                                   "deu_Latn"]
    (bundle / "bundle.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"bundle\.json: not a TTS bundle"):
        bundle_langs(str(bundle))
    with pytest.raises(ValueError, match=r"has no config\.json"):
        bundle_langs(str(tmp_path))
