"""CLaMP 3 inputs: ABC bars and MTF lines as patches, MusicXML/kern to ABC, MIDI to MTF, audio segment features and
their cache, manifests; each bad input gets a message naming the reason."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from music.clamp.abc import check_abc, read_sheet
from music.clamp.audio import FeatureCache
from music.clamp.config import AudioConfig, clamp3
from music.clamp.mtf import midi_to_mtf
from music.clamp.patches import END, PAD, abc_patches, decode_patch, encode_patches, mtf_patches
from tests.clamp_data import have_renderers, render, tune

JIG = "X:1\nT:Test\nM:6/8\nL:1/8\nK:D\n|:DFA dFA|GBd gfe:|\n% a comment\n[1dcB AFD|[2EFG FED|]\n"
needs_abc2midi = pytest.mark.skipif(not have_renderers(), reason="abc2midi is not installed")


def test_abc_patches_are_header_lines_and_bars() -> None:
    patches = abc_patches(JIG)
    assert patches[:5] == ["X:1\n", "T:Test\n", "M:6/8\n", "L:1/8\n", "K:D\n"]
    assert patches[5:] == ["|:DFA dFA|", "GBd gfe:|\n", "[1dcB AFD|", "[2EFG FED|]\n"]


def test_long_patches_continue_and_scores_are_cut() -> None:
    ids = encode_patches(["x" * 20, "ab"], patch_size=8, max_patches=10)  # 20 chars -> 8 + 8 + 4
    assert ids.shape == (4, 8)
    assert decode_patch(ids[0].tolist()) + decode_patch(ids[1].tolist()) + decode_patch(ids[2].tolist()) == "x" * 20
    assert ids[3, 2] == END and ids[3, 3] == PAD and decode_patch(ids[3].tolist()) == "ab"
    assert encode_patches(["a"] * 50, 8, 16).shape == (16, 8)
    mtf = "ticks_per_beat 480\n\nnote_on 0 0 60 80\nnote_off 240 0 60 0\n"
    assert mtf_patches(mtf, 24) == ["ticks_per_beat 480\n", "note_on 0 0 60 80\n", "note_off 240 0 60 0\n"]
    assert mtf_patches(mtf, 64) == ["ticks_per_beat 480\nnote_on 0 0 60 80\nnote_off 240 0 60 0\n"]  # whole lines


def test_bad_abc_is_named() -> None:
    assert check_abc(JIG) == JIG
    with pytest.raises(ValueError, match="no K:"):
        check_abc("X:1\nT:no key\n|abc|\n")
    with pytest.raises(ValueError, match="no notes"):
        check_abc("X:1\nK:D\n% nothing\n")


def test_musicxml_and_kern_become_abc(tmp_path: Path) -> None:
    import music21

    music21.converter.parse(JIG, format="abc").write("musicxml", fp=str(tmp_path / "t.musicxml"))
    abc = read_sheet(tmp_path / "t.musicxml")
    assert "M:6/8" in abc and "K:D" in abc
    assert abc_patches(abc)[-1].replace(" ", "").startswith("EFGFED")  # the last bar of the tune
    (tmp_path / "t.krn").write_text("**kern\n*M3/4\n*k[f#]\n=1\n4d\n4f#\n4a\n=2\n2.d\n*-\n", encoding="utf-8")
    kern = read_sheet(tmp_path / "t.krn")
    assert "M:3/4" in kern and "K:G" in kern and "D2 F2 A2|\nD6|" in kern  # F# is in the key: no ^F
    (tmp_path / "bad.musicxml").write_text("<score-partwise><part", encoding="utf-8")
    with pytest.raises(ValueError, match="music21 could not parse it"):
        read_sheet(tmp_path / "bad.musicxml")
    (tmp_path / "bin.abc").write_bytes(b"\xff\xfe\x00K:D")
    with pytest.raises(ValueError, match="not UTF-8"):
        read_sheet(tmp_path / "bin.abc")


@needs_abc2midi
def test_midi_becomes_mtf_and_broken_midi_is_named(tmp_path: Path) -> None:
    import random

    (tmp_path / "t.abc").write_text(tune(1, "waltz", "G", "major", random.Random(0)), encoding="utf-8")
    render(tmp_path / "t.abc", tmp_path / "t.mid", None)
    mtf = midi_to_mtf(tmp_path / "t.mid")
    lines = mtf.splitlines()
    assert lines[0] == "ticks_per_beat 480"
    assert "time_signature 0 3 4 18 8" in lines and "key_signature 0 G" in lines
    assert sum(line.startswith("note_on") for line in lines) == 24  # 4 bars of 6 eighths
    assert not any(line.startswith(("track_name", "end_of_track")) for line in lines)
    (tmp_path / "bad.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage")
    with pytest.raises(ValueError, match="broken MIDI"):
        midi_to_mtf(tmp_path / "bad.mid")


def test_audio_features_are_cached_and_bad_audio_is_named(tmp_path: Path) -> None:
    import soundfile as sf

    t = np.arange(16000 * 2) / 16000
    sf.write(tmp_path / "a.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)
    cfg = clamp3(audio_n_mels=32).audio
    cache = FeatureCache(cfg, tmp_path / "cache")
    feats = cache.get(tmp_path / "a.wav")
    assert feats.shape == (8, 32) and cache.misses == 1  # 2 s in 0.25 s segments
    assert int(feats.mean(0).argmax()) == int(feats[3].argmax())  # one tone: the same band everywhere
    again = FeatureCache(cfg, tmp_path / "cache")  # a new process reads the disk cache
    assert np.allclose(again.get(tmp_path / "a.wav"), feats) and again.misses == 0 and again.hits == 1
    other = FeatureCache(AudioConfig(n_mels=16, in_dim=16), tmp_path / "cache")  # other settings: recomputed
    assert other.get(tmp_path / "a.wav").shape == (8, 16) and other.misses == 1
    (tmp_path / "bad.wav").write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(ValueError, match="unreadable audio"):
        cache.get(tmp_path / "bad.wav")
    with pytest.raises(ValueError, match="audio features 'ssl' need ssl_model"):
        AudioConfig(features="ssl")


def test_manifest_rows_skip_what_the_stage_lacks(tmp_path: Path) -> None:
    from datamodules.music import read_rows

    rows = [{"id": "a", "abc": "abc/a.abc", "midi": "midi/a.mid", "texts": {"eng_Latn": "A jig.", "deu_Latn": "Jig."}},
            {"id": "b", "abc": "abc/b.abc", "texts": {"eng_Latn": "A reel."}}]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{broken\n", encoding="utf-8")
    log = tmp_path / "bad.jsonl"
    got = read_rows(path, ("abc", "midi"), langs=["eng_Latn"], bad_input_log=str(log))
    assert [r["id"] for r in got] == ["a"] and got[0]["texts"] == {"eng_Latn": "A jig."}
    assert got[0]["abc"] == str(tmp_path / "abc" / "a.abc")
    reasons = [json.loads(line)["reason"] for line in log.read_text().splitlines()]
    assert reasons == ["row 'b' has no midi", "bad manifest line (Expecting property name enclosed in double "
                       "quotes: line 1 column 2 (char 1))"]


def test_label_header_fields_are_stripped() -> None:
    from music.clamp.abc import strip_fields

    tune_text = "X:1\nT:Reel\nR:reel\nM:4/4\n%%MIDI program 40\nK:D\n|DFAd fdAF|\n"
    assert strip_fields(tune_text) == "X:1\nT:Reel\nM:4/4\nK:D\n|DFAd fdAF|\n"
    assert strip_fields(tune_text, ()) == tune_text


def test_descriptions_that_fit_other_tunes_are_found() -> None:
    from datamodules.music import collate, stated_attributes

    attrs = [{"genre": "jig", "key": "D", "mode": "major", "meter": "6/8", "tempo": 120, "tempo_word": "fast"},
             {"genre": "jig", "key": "D", "mode": "major", "meter": "6/8", "tempo": 90, "tempo_word": "moderate"},
             {"genre": "jig", "key": "G", "mode": "major", "meter": "6/8", "tempo": 120, "tempo_word": "fast"}]
    meanings = [{"facets": ["key"], "tempo_as": "bpm"}, {"facets": ["key", "tempo"], "tempo_as": "word"},
                {"facets": ["meter"], "tempo_as": "bpm"}]
    assert stated_attributes({"meaning": meanings[1]}) == ["genre", "key", "mode", "tempo_word"]
    assert stated_attributes({}) is None
    rows = [{"id": str(n), "attributes": a, "texts": {"eng_Latn": f"text {n}"}, "stated": stated_attributes(
        {"meaning": m})} for n, (a, m) in enumerate(zip(attrs, meanings))]
    # "a jig in D major" fits tunes 0 and 1; "a moderate jig in D major" tune 1; "a jig in 6/8" all three
    assert collate(rows)["fits"] == [[True, True, False], [False, True, False], [True, True, True]]
    bare = [{**r, "stated": None, "texts": {"eng_Latn": "same" if n < 2 else "other"}} for n, r in enumerate(rows)]
    assert collate(bare)["fits"] == [[True, True, False], [True, True, False], [False, False, True]]


def test_contrastive_loss_leaves_fitting_tunes_out_of_the_softmax() -> None:
    import torch

    from common.losses import InfoNCELoss
    from music.clamp.module import ClampModule

    torch.manual_seed(0)
    music, text, loss = torch.randn(4, 8), torch.randn(4, 8), InfoNCELoss(0.1)
    none = torch.zeros(4, 4, dtype=torch.bool)
    assert torch.allclose(ClampModule.contrastive(loss, music, text, none), loss(music, text))
    fits = none.clone()
    fits[0, 1] = True  # text 0 also describes tune 1: tune 1 may sit as close to it as tune 0 does
    twin = music.clone()
    twin[1] = music[0]
    plain, masked = loss(twin, text), ClampModule.contrastive(loss, twin, text, fits)
    assert masked < plain
