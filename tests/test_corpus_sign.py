"""corpus=sign: Holistic layout and both file forms, signer variation, held-out splits, translations, resume, render."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from common.commands import CORPUS_BUILDERS
from common.runner import compose_and_run
from datamodules.corpus.grammar.meaning import Clause, Entity, Meaning
from datamodules.corpus.grammar.realise import realise
from datamodules.corpus.sign import SPLITS, SignCorpusConfig, build_sign_corpus, render_clip
from datamodules.corpus.sign_grammar import gloss_string, sentence
from datamodules.corpus.sign_layout import FACE_START, LEFT_HAND_START, POINTS, RIGHT_HAND_START
from datamodules.corpus.sign_signer import make_signer
from tests.sign_corpus_data import TINY, write_tiny_sign_corpus

pose_format = pytest.importorskip("pose_format")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_sign_corpus(tmp_path_factory.mktemp("sign"))


def _rows(root: Path, split: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (root / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]


def test_registered_and_every_clip_has_the_holistic_layout(corpus: Path) -> None:
    assert CORPUS_BUILDERS.get("sign") is build_sign_corpus
    stats = json.loads((corpus / "corpus.json").read_text())
    assert stats["splits"]["train"]["clips"] == 20 and stats["splits"]["test"]["clips"] == 8
    lost_hand = []
    for split in SPLITS:
        for r in _rows(corpus, split):
            arr = np.load(corpus / r["pose"])
            assert arr.dtype == np.float32 and arr.shape == (r["frames"], POINTS, 4), r["id"]
            assert 2.0 <= r["frames"] / r["fps"] <= 12.0
            conf = arr[..., 3]
            assert ((conf >= 0) & (conf <= 1)).all()
            assert (np.isnan(arr[..., :3]).any(-1) == (conf == 0)).all()  # lost <=> NaN and confidence 0
            assert (conf[:, 25:33] == 0).all() and (conf[:, 11:13] > 0).all()  # legs out of frame, shoulders in
            ok = arr[conf > 0][:, :2]
            assert ok.min() > -0.2 and ok.max() < 1.2  # normalised image coordinates
            lost_hand += [(conf[:, LEFT_HAND_START] == 0).mean(), (conf[:, RIGHT_HAND_START] == 0).mean()]
            assert np.isfinite(arr[:, FACE_START:FACE_START + 468, :3]).any()
    assert 0.005 < float(np.mean(lost_hand)) < 0.4  # hands are sometimes lost, not mostly


def test_pose_file_reads_back_with_pose_format_equal_to_the_npy(corpus: Path) -> None:
    from pose_format import Pose

    rows = [r for s in SPLITS for r in _rows(corpus, s) if "pose_file" in r]
    assert len(rows) >= 4
    for r in rows[:3]:
        pose = Pose.read((corpus / r["pose_file"]).read_bytes())
        assert [(c.name, len(c.points)) for c in pose.header.components] == [
            ("POSE_LANDMARKS", 33), ("FACE_LANDMARKS", 468), ("LEFT_HAND_LANDMARKS", 21), ("RIGHT_HAND_LANDMARKS", 21)]
        assert pose.body.fps == r["fps"]
        arr = np.load(corpus / r["pose"])
        conf = np.asarray(pose.body.confidence)[:, 0]
        np.testing.assert_allclose(conf, arr[..., 3], atol=1e-6)
        dims = pose.header.dimensions
        data = np.asarray(pose.body.data.data)[:, 0] / np.array([dims.width, dims.height, dims.width])
        seen = arr[..., 3] > 0
        np.testing.assert_allclose(data[seen], arr[..., :3][seen], atol=1e-5)
        assert pose.body.data.mask[:, 0][~seen].all()  # lost points are masked


def _dominant_height(xyz: np.ndarray, left_handed: bool) -> np.ndarray:
    """The dominant wrist's height over the shoulders in shoulder widths, resampled to 60 steps."""
    wrist = 15 if left_handed else 16
    shoulders = (xyz[:, 11] + xyz[:, 12]) / 2
    width = np.abs(xyz[:, 11, 0] - xyz[:, 12, 0]).mean()
    y = (shoulders[:, 1] - xyz[:, wrist, 1]) / width
    return np.interp(np.linspace(0, len(y) - 1, 60), np.arange(len(y)), y)


def test_the_same_sentence_by_two_signers_differs_but_keeps_its_structure() -> None:
    cfg = SignCorpusConfig(missing=0.0)
    cup, table = Entity("cup", 2, "red"), Entity("table", 1, None, "big", True)
    m = Meaning((Clause(cup, "stand", "on", table),))
    other = Meaning((Clause(Entity("dog", 1), "sleep"),))
    a, b, lefty = make_signer(0), make_signer(5), make_signer(2)
    assert lefty.left_handed and not a.left_handed
    xa, xb, xl = (render_clip(m, s, "x", cfg)[0] for s in (a, b, lefty))
    assert len(xa) != len(xb) or np.nanmax(np.abs(xa - xb)) > 0.02  # proportions, tempo and framing differ
    shoulder_widths = [np.abs(x[:, 11, 0] - x[:, 12, 0]).mean() for x in (xa, xb)]
    assert abs(shoulder_widths[0] - shoulder_widths[1]) > 1e-3
    ha = _dominant_height(xa, False)
    corr = [np.corrcoef(ha, h)[0, 1] for h in (_dominant_height(xb, False), _dominant_height(xl, True))]
    assert min(corr) > 0.8, corr  # the same signs in the same order, whoever signs them
    xo = render_clip(other, a, "x", cfg)[0]
    assert np.corrcoef(ha, _dominant_height(xo, False))[0, 1] < min(corr)
    # The dominant hand is raised more of the time: the right one, and the left one of the left-handed signer.
    assert _dominant_height(xa, False).mean() > _dominant_height(xa, True).mean() + 0.1
    assert _dominant_height(xl, True).mean() > _dominant_height(xl, False).mean() + 0.1


def test_sign_order_is_topic_first_and_verb_last() -> None:
    cup, table = Entity("cup", 2, "red"), Entity("table", 1, None, "big", True)
    m = Meaning((Clause(cup, "stand", "on", table), Clause(Entity("cat", 1), "sleep", "next_to")))
    assert gloss_string(sentence(m)) == "TABLE BIG IX-a CUP RED TWO ON STAND IX-a CAT NEXT-TO SLEEP"
    assert realise(m, "eng_Latn").startswith("Two red cups")  # unlike English, which starts with the figure
    tokens = sentence(m)
    assert [t.topic for t in tokens[:3]] == [True] * 3 and tokens[3].topic is False
    assert tokens[1].mouth == "puff" and [t.nod for t in tokens].count(True) == 2


def test_held_out_sentences_and_signers_never_reach_training(corpus: Path) -> None:
    train = _rows(corpus, "train")
    train_sents = {r["sentence_id"] for r in train}
    train_glosses, train_signers = {r["gloss"] for r in train}, {r["signer"] for r in train}
    assert len(train_signers) == TINY["signers"] - TINY["heldout_signers"]
    held_signers: set[str] = set()
    for split in ("dev", "test"):
        rows = _rows(corpus, split)
        assert not {r["sentence_id"] for r in rows} & train_sents
        assert not {r["gloss"] for r in rows} & train_glosses
        assert not {r["texts"]["eng_Latn"] for r in rows} & {r["texts"]["eng_Latn"] for r in train}
        held_signers |= {r["signer"] for r in rows}
    assert held_signers and not held_signers & train_signers
    seen = _rows(corpus, "test_seen_signer")
    assert {r["sentence_id"] for r in seen} == {r["sentence_id"] for r in _rows(corpus, "test")}
    assert {r["signer"] for r in seen} <= train_signers


def test_every_row_has_at_least_six_translations_of_its_sentence(corpus: Path) -> None:
    by_sentence: dict[str, dict[str, str]] = {}
    for split in SPLITS:
        for r in _rows(corpus, split):
            texts = r["texts"]
            assert len(texts) >= 6 and all(t.strip() for t in texts.values())
            assert {"eng_Latn", "deu_Latn", "rus_Cyrl", "hin_Deva", "arb_Arab"} <= set(texts)
            assert by_sentence.setdefault(r["sentence_id"], texts) == texts  # one sentence, one set of texts
    english = [t["eng_Latn"] for t in by_sentence.values()]
    assert len(set(english)) == len(english)


def test_rerun_skips_a_finished_corpus_and_resumes_a_broken_one(tmp_path: Path) -> None:
    root = write_tiny_sign_corpus(tmp_path, train_sentences=4, train_clips=4, dev_sentences=1, test_sentences=1)
    first = np.load(root / "poses/train-000001.npy")
    stamp = os.stat(root / "poses/train-000000.npy").st_mtime_ns
    write_tiny_sign_corpus(tmp_path, train_sentences=4, train_clips=4, dev_sentences=1, test_sentences=1)
    assert os.stat(root / "poses/train-000000.npy").st_mtime_ns == stamp
    (root / "corpus.json").unlink()  # as if the build had been killed
    (root / "poses/train-000001.npy").unlink()
    write_tiny_sign_corpus(tmp_path, train_sentences=4, train_clips=4, dev_sentences=1, test_sentences=1)
    assert os.stat(root / "poses/train-000000.npy").st_mtime_ns == stamp  # kept
    np.testing.assert_array_equal(np.load(root / "poses/train-000001.npy"), first)  # redone identically
    with pytest.raises(FileExistsError, match=r"corpus\.json"):
        write_tiny_sign_corpus(tmp_path, train_sentences=5, train_clips=4, dev_sentences=1, test_sentences=1)


def test_bad_configs_get_one_clear_message(tmp_path: Path) -> None:
    cfg = SignCorpusConfig(out_dir=str(tmp_path), **TINY)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 6"):
        build_sign_corpus(dataclasses.replace(cfg, langs=["eng_Latn", "deu_Latn"]))
    with pytest.raises(KeyError, match="xxx_Latn"):
        build_sign_corpus(dataclasses.replace(cfg, langs=["xxx_Latn"] * 6))


def test_render_pose_draws_npy_and_pose_files(corpus: Path, tmp_path: Path) -> None:
    from PIL import Image

    from tests.helpers import load_script

    render = load_script("render_pose")
    row = next(r for r in _rows(corpus, "test") if "pose_file" in r)
    out, gif, short = tmp_path / "strip.png", tmp_path / "clip.gif", tmp_path / "short.npy"
    np.save(short, np.load(corpus / row["pose"])[:12])  # the GIF draws every frame: keep it short
    args = [f"input=[{short},{corpus / row['pose_file']}]", f"out={out}", f"gif={gif}", "frames=3"]
    assert compose_and_run("render_pose", args, render.run) == [str(out), str(gif)]
    assert Image.open(out).size[0] > 200 and getattr(Image.open(gif), "n_frames", 1) == 12
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((4, 10, 4), np.float32))
    with pytest.raises(SystemExit, match=r"bad\.npy: expected"):
        compose_and_run("render_pose", [f"input={bad}", f"out={out}"], render.run)


def test_the_sign_family_reads_both_forms_alike(corpus: Path) -> None:
    pose_io = pytest.importorskip("vision.sign.pose_io")
    row = next(r for r in _rows(corpus, "dev") if "pose_file" in r)
    a, b = pose_io.read_clip(corpus / row["pose"]), pose_io.read_clip(corpus / row["pose_file"])
    np.testing.assert_allclose(a.conf, b.conf, atol=1e-6)
    np.testing.assert_allclose(np.nan_to_num(a.xyz), np.nan_to_num(b.xyz), atol=1e-5)
