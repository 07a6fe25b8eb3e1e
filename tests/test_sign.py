"""SONAR-SLT pieces: pose reading (.npy, .pose, missing points), normalisation, perturbations, decoding, the hub
round trip, the translator API and the batch command with bad files."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from text.tokenizer import EOS_ID
from vision.sign import pose_io
from vision.sign.augment import PoseAugmentConfig, PosePipeline, perturb
from vision.sign.config import SignTranslatorConfig, slt_tiny
from vision.sign.decoder import beam_search, greedy_search
from vision.sign.model import SignTranslationModel

TINY: dict[str, Any] = {
    "enc_d_model": 32, "enc_part_dim": 16, "enc_num_layers": 1, "enc_num_heads": 2, "enc_ffn_dim": 64,
    "dec_d_model": 32, "dec_num_layers": 1, "dec_num_heads": 2, "dec_ffn_dim": 64, "dec_max_length": 16}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.slt_data import write_sign_corpus

    return write_sign_corpus(tmp_path_factory.mktemp("sign"), n_train=8)


def clip_array(t: int = 12, seed: int = 0) -> np.ndarray:
    from tests.slt_data import sign_clip

    return sign_clip((0, 1), 0, np.random.default_rng(seed), frames=t // 2).astype(np.float32)


def test_npy_and_pose_files_read_the_same_keypoints(corpus: Path) -> None:
    row = json.loads((corpus / "train.jsonl").read_text().splitlines()[0])
    a = pose_io.read_clip(corpus / row["pose"])
    b = pose_io.read_clip(corpus / row["pose_file"])
    assert a.xyz.shape == b.xyz.shape == (len(a), 543, 3)
    assert np.array_equal(a.conf > 0, b.conf > 0)
    seen = a.conf > 0
    assert np.allclose(a.xyz[seen], b.xyz[seen], atol=1e-4)
    assert np.isnan(a.xyz[~seen]).all() and np.isnan(b.xyz[~seen]).all()  # missing stays missing in both forms


def test_normalise_centres_on_the_shoulders_and_scales_by_their_width() -> None:
    arr = clip_array()
    clip = pose_io.normalise(pose_io.from_array(arr))
    mid = 0.5 * (clip.xyz[:, 11, :2] + clip.xyz[:, 12, :2])
    assert np.allclose(mid, 0, atol=1e-5)
    assert np.allclose(np.linalg.norm(clip.xyz[:, 11, :2] - clip.xyz[:, 12, :2], axis=-1), 1.0, atol=0.05)
    moved = arr.copy()
    moved[..., :2] = moved[..., :2] * 3 + 0.7  # the same signing, filmed closer and off-centre
    again = pose_io.normalise(pose_io.from_array(moved))
    assert np.allclose(again.xyz[..., :2], clip.xyz[..., :2], atol=1e-4)


def test_missing_points_and_missing_shoulders_do_not_crash() -> None:
    arr = clip_array()
    arr[:, 500:, :3] = np.nan  # both hands lost by the tracker
    arr[3:6, 11] = [0, 0, 0, 0]  # a shoulder at zero confidence in some frames
    arr[7, :, 3] = 0.0  # one frame with nothing
    feats = pose_io.features(pose_io.from_array(arr))
    assert np.isfinite(feats).all() and feats.shape == arr.shape
    assert (feats[:, 510, 3] == 0).all() and (feats[7, :, 3] == 0).all()
    nothing = np.full_like(arr, np.nan)
    assert np.isfinite(pose_io.features(pose_io.from_array(nothing))).all()
    model = SignTranslationModel(slt_tiny(embed_dim=16, vocab_size=50, **TINY)).eval()
    x = torch.from_numpy(np.stack([feats, pose_io.features(pose_io.from_array(nothing))]))
    out = model.embed(x, torch.ones(2, len(arr), dtype=torch.bool))
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(("content", "reason"), [
    (b"not an array", "unreadable .npy"), (None, "empty pose sequence"), ("shape", "expected a [T, 543, 4]")])
def test_bad_pose_files_name_the_file_and_the_reason(tmp_path: Path, content: object, reason: str) -> None:
    f = tmp_path / "clip.npy"
    if content is None:
        np.save(f, np.zeros((0, 543, 4), np.float32))
    elif content == "shape":
        np.save(f, np.zeros((5, 100, 4), np.float32))
    else:
        f.write_bytes(content)  # type: ignore[arg-type]
    with pytest.raises(pose_io.PoseError) as e:
        pose_io.read_clip(f)
    assert str(f) in str(e.value) and reason in str(e.value)
    broken = tmp_path / "clip.pose"
    broken.write_bytes(b"\x00\x01garbage")
    with pytest.raises(pose_io.PoseError, match=r"unreadable \.pose"):
        pose_io.read_clip(broken)


def test_perturbations_change_the_motion_but_keep_the_layout() -> None:
    clip = pose_io.normalise(pose_io.from_array(clip_array(40)))
    rng = np.random.default_rng(0)
    out = perturb(clip, PoseAugmentConfig(occlude_hand=1.0), rng)
    assert out.xyz.shape[1:] == (543, 3) and 20 <= len(out) <= 60
    hands = out.conf[:, 501:]
    assert (hands == 0).all(0).reshape(2, 21).all(1).any() or (hands == 0).any()  # a hand went missing somewhere
    slow = perturb(clip, PoseAugmentConfig(speed=0.5, rotate_deg=0, scale=0, shear=0, shift=0, jitter=0,
                                           frame_drop=0, occlude_hand=0), np.random.default_rng(3))
    assert len(slow) != len(clip)
    still = perturb(clip, PoseAugmentConfig(0, 0, 0, 0, 0, 0, 0, 0), rng)
    assert np.allclose(np.nan_to_num(still.xyz), np.nan_to_num(clip.xyz), atol=1e-6)
    feats = PosePipeline(PoseAugmentConfig(), max_frames=16)(clip, rng)
    assert feats.shape == (16, 543, 4) and np.isfinite(feats).all()


def test_beam_search_finds_a_more_probable_sentence_than_greedy() -> None:
    # Token 4 looks best first but leads only to poor continuations; token 5 then 6 is better overall.
    v = 8
    table = torch.full((v, v), -20.0)
    table[1, 4], table[1, 5] = np.log(0.55), np.log(0.45)
    table[4, 6], table[4, 7] = np.log(0.55), np.log(0.45)
    table[5, 6] = np.log(0.99)
    table[6, EOS_ID] = table[7, EOS_ID] = 0.0
    table = table.log_softmax(-1)

    def step(prefix: torch.Tensor) -> torch.Tensor:
        return table[prefix[:, -1]]

    def logp(seq: list[int]) -> float:
        toks = [1, *seq, EOS_ID]
        return float(sum(table[a, b] for a, b in itertools.pairwise(toks)))

    start = torch.tensor([1])
    greedy = greedy_search(step, start, 6)[0]
    beam = beam_search(step, start, 3, 6, length_penalty=0.0)[0]
    assert greedy == [4, 6] and beam == [5, 6]
    assert logp(beam) > logp(greedy)
    assert beam_search(step, start, 1, 6, length_penalty=0.0)[0] == greedy


def tiny_translator(tmp_path: Path, **sizes: Any) -> tuple[Path, SignTranslationModel]:
    from text.tokenizer import SentencePieceTokenizer
    from vision.sign.hub import save_pretrained

    tok = SentencePieceTokenizer.train(["a red house", "ein rotes Haus", "the water"] * 5, tmp_path / "t.model",
                                       vocab_size=60, langs=["deu_Latn", "eng_Latn"])
    torch.manual_seed(0)
    model = SignTranslationModel(slt_tiny(16, len(tok), ["deu_Latn", "eng_Latn"], **{**TINY, **sizes}))
    return save_pretrained(model, tok, tmp_path / "model"), model


def test_hub_round_trip_gives_the_same_translations(tmp_path: Path, corpus: Path) -> None:
    from common import hub
    from vision.sign.translator import SignTranslator

    out, model = tiny_translator(tmp_path)
    loaded = hub.load_pretrained(out)
    assert loaded.config["model_type"] == "sign_translator"
    assert isinstance(loaded.model, SignTranslationModel)
    assert SignTranslatorConfig.from_dict(loaded.config) == model.cfg
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.model.state_dict()[k]), k
    tr = SignTranslator.from_pretrained(out)
    pose = corpus / "poses" / "train_0000.npy"
    first = tr.translate(pose, ["eng_Latn", "deu_Latn"], beam=2)
    assert set(first) == {"eng_Latn", "deu_Latn"} and all(isinstance(s, str) for s in first.values())
    assert tr.translate(np.load(pose), ["eng_Latn", "deu_Latn"], beam=2) == first
    with pytest.raises(ValueError, match="not trained to write fra_Latn"):
        tr.translate(pose, ["fra_Latn"])
    (out / "model.safetensors").write_bytes(b"broken")
    with pytest.raises(hub.ModelDirError, match="unreadable weights"):
        SignTranslator.from_pretrained(out)


def test_translate_sign_skips_bad_files_and_resumes(tmp_path: Path, corpus: Path) -> None:
    from tests.helpers import load_script

    model, _ = tiny_translator(tmp_path)
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("train_0000.npy", "train_0001.npy"):
        (folder / name).write_bytes((corpus / "poses" / name).read_bytes())
    (folder / "pose.pose").write_bytes((corpus / "pose" / "train_0000.pose").read_bytes())
    (folder / "broken.npy").write_bytes(b"junk")
    np.save(folder / "empty.npy", np.zeros((0, 543, 4), np.float32))
    out = tmp_path / "out.jsonl"
    script = load_script("translate_sign")
    args = [f"model={model}", f"input={folder}", "tgt_langs=[eng_Latn,deu_Latn]", f"output={out}", "progress=false",
            "beam=2"]
    report = script.main(args)
    assert report.done == 3 and report.exit_code == 3
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [Path(r["id"]).name for r in rows] == ["pose.pose", "train_0000.npy", "train_0001.npy"]
    assert all(set(r["translations"]) == {"eng_Latn", "deu_Latn"} for r in rows)
    failed = {Path(f["id"]).name: f["reason"] for f in map(json.loads, (tmp_path / "out.jsonl.failed.jsonl")
                                                          .read_text().splitlines())}
    assert set(failed) == {"broken.npy", "empty.npy"}
    assert "unreadable .npy" in failed["broken.npy"] and "empty pose sequence" in failed["empty.npy"]
    assert str(folder / "empty.npy") in failed["empty.npy"]
    again = script.main(args)
    assert again.done == 0 and again.skipped_existing == 3
    with pytest.raises(SystemExit, match="fra_Latn"):
        script.main([*args[:2], "tgt_langs=[fra_Latn]", f"output={tmp_path / 'x.jsonl'}"])


@pytest.fixture(scope="module")
def sign_data(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from datamodules.sign import SignDataModule
    from tests.slt_data import write_tiny_encoder

    enc = write_tiny_encoder(tmp_path_factory.mktemp("signenc"), corpus)

    def make(**kw: Any) -> SignDataModule:
        return SignDataModule(f"{corpus}/train.jsonl", f"{corpus}/dev.jsonl", None, str(enc), str(corpus / "cache"),
                              str(corpus / "tok.model"), PosePipeline(None), vocab_size=80, **kw)

    return make


def test_a_language_the_encoder_never_learnt_takes_its_translations_embeddings(sign_data: Any) -> None:
    data = sign_data(embed_langs=["eng_Latn", "deu_Latn"], batch_size=4, ae_batch_size=8)
    row = data.rows("train")[0]["texts"]
    eng, deu = data.targets.get("eng_Latn", row["eng_Latn"]), data.targets.get("deu_Latn", row["deu_Latn"])
    assert np.array_equal(data.target(row, "deu_Latn", train=True), deu)  # an embedding language keeps its own
    mean = (eng + deu) / np.linalg.norm(eng + deu)
    assert np.allclose(data.target(row, "fra_Latn", train=False), mean, atol=1e-6)
    drawn = [data.target(row, "fra_Latn", train=True) for _ in range(20)]
    assert all(np.array_equal(d, eng) or np.array_equal(d, deu) for d in drawn)
    assert any(np.array_equal(d, eng) for d in drawn) and any(np.array_equal(d, deu) for d in drawn)
    # The decoder learns French from the English and German embeddings of the same sentence.
    batch = data.collate_text([("fra_Latn", row["fra_Latn"])] * 12)
    assert all(torch.equal(e, torch.from_numpy(eng)) or torch.equal(e, torch.from_numpy(deu)) for e in batch["emb"])
    assert "fra_Latn" in data.decoder_langs()


def test_training_batches_hold_clips_of_similar_length(sign_data: Any) -> None:
    data = sign_data(batch_size=3, batch_seconds=4.0, ae_batch_size=0)
    loader = data.clip_loader(data.rows("train"), ["eng_Latn"], train=True)
    frames = [r["frames"] for r in loader.dataset.rows]
    batches = list(loader.batch_sampler)
    assert sorted(i for b in batches for i in b) == list(range(len(frames)))
    assert all((len(b) <= 3 and len(b) * max(frames[i] for i in b) / 25 <= 4.0) or len(b) == 1 for b in batches)
    assert sign_data(batch_size=3, ae_batch_size=0).clip_loader(data.rows("train"), ["eng_Latn"], True).batch_sampler \
        .batch_size == 3  # null batch_seconds: plain random batches


def test_the_translator_reads_clips_at_the_encoder_frame_rate(tmp_path: Path, corpus: Path) -> None:
    from vision.sign.translator import SignTranslator

    tr = SignTranslator.from_pretrained(tiny_translator(tmp_path, enc_fps=12.5)[0])
    pose = corpus / "poses" / "train_0000.npy"
    assert tr.pipeline.fps == 12.5
    assert len(tr.features(pose)) == round(len(np.load(pose)) / 2)
