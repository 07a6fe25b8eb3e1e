"""The speaker encoder: pooling, AAM-softmax, learning to tell voices apart, hub round trip, similarity, recipe."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchaudio

from common.hub import ModelDirError
from speech.audio import SAMPLE_RATE, write_audio
from speech.speaker.config import EcapaConfig, ecapa_tiny
from speech.speaker.hub import save_pretrained
from speech.speaker.loss import AAMSoftmax
from speech.speaker.model import AttentiveStatsPool, SpeakerEncoder
from speech.speaker.similarity import reference_trials, similarity_report, speaker_similarity
from speech.speaker.verify import all_pairs, verification_metrics
from tests.helpers import compose_cfg, load_script

MICRO: dict[str, Any] = {"channels": 16, "scale": 2, "se_channels": 8, "mfa_channels": 32, "attention_channels": 8,
                         "embed_dim": 16}
"""A few thousand parameters: enough to tell four synthetic voices apart in seconds."""


@pytest.fixture(autouse=True, scope="module")
def _single_thread() -> Iterator[None]:
    # Tiny models: intra-op threads only add synchronisation cost on a shared CPU.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def voice(speaker: int, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """A synthetic voice: harmonics of the speaker's pitch under the speaker's two formants, jittered per clip."""
    f0 = (110.0, 150.0, 200.0, 260.0)[speaker] * rng.uniform(0.93, 1.07)
    formants = ((500, 1500), (700, 1100), (350, 2300), (850, 1800))[speaker]
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    wave = np.zeros_like(t)
    for h in range(1, int(4000 / f0)):
        env = sum(math.exp(-((h * f0 - f) / 150.0) ** 2) for f in formants) + 0.02
        wave += env / h**0.5 * np.sin(2 * np.pi * h * f0 * t + rng.uniform(0, 2 * np.pi))
    wave *= 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(2, 6) * t + rng.uniform(0, 6))  # syllable-like rhythm
    wave = 0.3 * wave / np.abs(wave).max() + 0.01 * rng.standard_normal(len(t))
    return wave.astype(np.float32)


def test_attentive_pooling_ignores_padded_frames() -> None:
    torch.manual_seed(0)
    for context in (True, False):
        pool = AttentiveStatsPool(8, 4, global_context=context).eval()
        x = torch.randn(2, 8, 30)
        mask = torch.ones(2, 1, 30)
        mask[1, :, 18:] = 0
        x[1, :, 18:] = 1e6 * torch.randn(8, 12)  # whatever padding holds
        out = pool(x, mask)
        alone = pool(x[1:, :, :18], torch.ones(1, 1, 18))
        assert out.shape == (2, 16) and torch.isfinite(out).all()
        assert torch.allclose(out[1], alone[0], atol=1e-5)
        # It does look at the real frames.
        x[1, :, 3] += 5.0
        assert not torch.allclose(pool(x, mask)[1], out[1], atol=1e-3)


def test_encoder_embeds_a_padded_batch_as_each_wave_alone() -> None:
    torch.manual_seed(0)
    net = SpeakerEncoder(EcapaConfig(n_mels=80, **MICRO)).eval()
    a, b = torch.randn(16000), torch.randn(9000)
    both = net.embed([a, b])
    assert both.shape == (2, 16) and torch.allclose(both.norm(dim=-1), torch.ones(2))
    assert torch.allclose(both, torch.cat([net.embed(a), net.embed(b[None])]), atol=1e-5)
    # Other rates are resampled to 16 kHz first.
    slow = torchaudio.functional.resample(a, 16000, 8000)
    assert torch.allclose(net.embed(slow, 8000), net.embed(torchaudio.functional.resample(slow, 8000, 16000)))
    with pytest.raises(ValueError, match="wave 1: expected a non-empty"):
        net.embed([a, torch.zeros(0)])
    with pytest.raises(ValueError, match="NaN"):
        net.embed(torch.full((800,), float("nan")))


def test_aam_softmax_without_margin_is_scaled_cosine_cross_entropy() -> None:
    torch.manual_seed(0)
    head = AAMSoftmax(8, 5, margin=0.0, scale=20.0)
    emb, labels = torch.randn(6, 8), torch.tensor([0, 1, 2, 3, 4, 0])
    cos = F.normalize(emb, dim=-1) @ F.normalize(head.weight, dim=-1).T
    assert torch.allclose(head(emb, labels), F.cross_entropy(20.0 * cos, labels), atol=1e-5)

    with_margin = head.logits(emb, labels, margin=0.3)
    plain = head.logits(emb, labels)
    target = F.one_hot(labels, 5).bool()
    assert (with_margin[target] < plain[target]).all()  # only the target class pays the margin
    assert torch.equal(with_margin[~target], plain[~target])
    assert head(emb, labels, margin=0.3) > head(emb, labels)
    # Past theta + m > pi the target logit keeps falling with the angle (ArcFace's linear continuation).
    w = F.normalize(head.weight[0], dim=-1)
    angles = [2.5, 2.8, 3.1]
    far = torch.stack([math.cos(a) * w + math.sin(a) * F.normalize(torch.randn(8) - (torch.randn(8) @ w) * w, dim=-1)
                       for a in angles])
    zeros = torch.zeros(3, dtype=torch.long)
    logits = head.logits(far, zeros, margin=0.5)[:, 0]
    assert (logits.diff() < 0).all()


def _clips(speakers: range, per: int, seed: int, seconds: float = 0.6) -> tuple[torch.Tensor, list[str]]:
    rng = np.random.default_rng(seed)
    waves = [voice(s, seconds, rng) for s in speakers for _ in range(per)]
    return torch.from_numpy(np.stack(waves)), [f"spk{s}" for s in speakers for _ in range(per)]


def test_tiny_encoder_learns_to_tell_voices_apart_on_held_out_clips() -> None:
    torch.manual_seed(0)
    net = SpeakerEncoder(EcapaConfig(**MICRO))
    head = AAMSoftmax(16, 4, margin=0.2, scale=15.0)
    train_wave, train_spk = _clips(range(4), 12, seed=1)
    labels = torch.tensor([int(s[3:]) for s in train_spk])
    test_wave, test_spk = _clips(range(4), 6, seed=99)  # clips never trained on

    def test_eer() -> float:
        emb = net.eval().embed(test_wave)
        return verification_metrics(all_pairs(emb, test_spk))["eer"]

    before = test_eer()
    opt = torch.optim.AdamW([*net.parameters(), *head.parameters()], lr=5e-3)
    for step in range(30):
        idx = torch.randperm(len(train_wave))[:16]
        crop = int(torch.randint(0, 1600, ()))  # a different stretch of each clip every step
        wave = train_wave[idx, crop : crop + 6400]
        net.train()
        loss = head(net(wave, torch.full((16,), wave.shape[1])), labels[idx], margin=0.2 * min(1, step / 15))
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = test_eer()
    assert before > 0.15 and after <= 0.05, (before, after)  # untrained it confuses them; trained it does not


def test_hub_round_trip_gives_identical_embeddings(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = SpeakerEncoder(ecapa_tiny(**MICRO))
    net.train()(torch.randn(4, 8000), torch.full((4,), 8000))  # move BatchNorm's running statistics off their init
    net.eval()
    out = save_pretrained(net, tmp_path / "enc", train_speakers=4)
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "speaker_ecapa" and config["embed_dim"] == 16 and config["train_speakers"] == 4
    loaded = SpeakerEncoder.from_pretrained(out)
    assert loaded.cfg == net.cfg and not loaded.training
    wave = torch.randn(2, 12000)
    assert torch.equal(loaded.embed(wave), net.embed(wave))
    with pytest.raises(ModelDirError, match="nowhere"):
        SpeakerEncoder.from_pretrained(tmp_path / "nowhere")
    (out / "config.json").write_text(json.dumps({**config, "model_type": "ctc_conformer"}))
    with pytest.raises(ModelDirError, match="is not 'speaker_ecapa'"):
        SpeakerEncoder.from_pretrained(out)


def test_similarity_gap_fraction_is_one_at_ceiling_and_zero_at_floor() -> None:
    torch.manual_seed(0)
    prompt = torch.randn(6, 8)
    same = prompt + 0.3 * torch.randn(6, 8)
    other = torch.randn(6, 8)
    speakers = ["a", "a", "b", "b", "c", "c"]
    top = similarity_report(prompt, same, same, other, speakers)
    assert top.gap_fraction == pytest.approx(1.0) and top.generated == pytest.approx(top.ceiling)
    assert all(v == pytest.approx(1.0) for v in top.per_speaker.values()) and top.spread == pytest.approx(0, abs=1e-6)
    bottom = similarity_report(prompt, other, same, other, speakers)
    assert bottom.gap_fraction == pytest.approx(0.0, abs=1e-6) and set(bottom.per_speaker) == {"a", "b", "c"}
    # Halfway in cosine for speaker a only: the overall figure moves, and the spread shows it.
    mixed = similarity_report(prompt, torch.cat([same[:2], other[2:]]), same, other, speakers)
    assert mixed.per_speaker["a"] == pytest.approx(1.0) and mixed.per_speaker["b"] == pytest.approx(0.0, abs=1e-6)
    assert 0 < mixed.gap_fraction < 1 and mixed.spread > 0.4 and mixed.worst == pytest.approx(0.0, abs=1e-6)
    assert "of the gap" in mixed.summary()
    with pytest.raises(ValueError, match="ceiling"):
        similarity_report(prompt, same, other, same, speakers)
    with pytest.raises(ValueError, match="generated"):
        similarity_report(prompt, same[:3], same, other, speakers)


def test_reference_trials_pick_ceiling_and_floor_recordings() -> None:
    rows = [{"speaker": s, "lang": lang} for s, lang in
            [("a", "x"), ("a", "x"), ("a", "x"), ("b", "x"), ("b", "x"), ("c", "y"), ("d", "y")]]
    trials = reference_trials(rows, per_speaker=2)
    assert [t.speaker for t in trials] == ["a", "a", "b", "b"]  # c and d have one recording each: no ceiling
    for t in trials:
        assert t.prompt != t.same and rows[t.same]["speaker"] == t.speaker != rows[t.other]["speaker"]
        assert rows[t.other]["lang"] == rows[t.prompt]["lang"]
    assert reference_trials(rows, per_speaker=2) == trials
    with pytest.raises(ValueError, match="only one speaker"):
        reference_trials(rows[:3])


def test_speaker_similarity_of_waves() -> None:
    torch.manual_seed(0)
    net = SpeakerEncoder(EcapaConfig(**MICRO)).eval()
    a = torch.from_numpy(voice(0, 0.5, np.random.default_rng(0)))
    assert float(speaker_similarity(net, a, a)) == pytest.approx(1.0, abs=1e-5)
    b = torch.from_numpy(voice(3, 0.5, np.random.default_rng(1)))
    assert speaker_similarity(net, torch.stack([a, b]), torch.stack([b, a])).shape == (2,)


def test_verification_trials_keep_every_target_pair() -> None:
    emb = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [-1.0, 0.0]])
    speakers, langs = ["a", "a", "b", "b", "c"], ["x", "x", "x", "x", "y"]
    trials = all_pairs(emb, speakers, langs)
    assert len(trials.scores) == 10 and int(trials.target.sum()) == 2
    m = verification_metrics(trials)
    assert m["eer"] == 0.0 and m["trials"] == 10 and m["trials_same_lang"] == 6
    few = all_pairs(emb, speakers, langs, max_trials=4)
    assert len(few.scores) == 4 and int(few.target.sum()) == 2
    assert verification_metrics(all_pairs(emb[[0, 2, 4]], ["a", "b", "c"])) == {}


def _manifest(root: Path, split: str, speakers: range, per: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    rows = []
    for s in speakers:
        for k in range(per):
            rel = f"{split}/spk{s}_{k}.wav"
            write_audio(root / rel, voice(s, rng.uniform(0.8, 1.6), rng))
            rows.append({"audio": rel, "text": "x", "lang": "und_Latn", "speaker": f"spk{s}", "duration": 1.0})
    path = root / f"{split}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def voices_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("voices")
    _manifest(root, "train", range(3), 4, seed=0)
    _manifest(root, "dev", range(3), 2, seed=1)
    _manifest(root, "test", range(3), 2, seed=2)
    return root


def _overrides(root: Path, train: bool = True) -> list[str]:
    return ["experiment=speaker_encoder", f"data.train_manifest={root}/train.jsonl",
            f"data.val_manifest={root}/dev.jsonl", f"data.test_manifest={root}/test.jsonl", "data.num_workers=0",
            "data.batch_size=6", "data.crop_seconds=[0.5,0.7]", "trainer.accelerator=cpu",
            "trainer.precision=32-true", "logger=csv", "trainer.enable_progress_bar=false",
            *(["callbacks.progress_bar=null"] if train else []),
            *[f"++model.encoder.{k}={v}" for k, v in MICRO.items()]]


def test_experiment_fast_dev_run_on_a_tiny_manifest(voices_manifest: Path, tmp_path: Path) -> None:
    cfg = compose_cfg("train", [*_overrides(voices_manifest), "debug=fdr"], tmp_path)
    assert cfg.monitor == "val/eer" and cfg.model.encoder._target_ == "speech.speaker.config.ecapa_tiny"
    metrics = load_script("train").train(cfg)
    assert metrics["train/loss"] > 0 and 0 <= metrics["val/eer"] <= 1
    assert metrics["objective"] == metrics["val/eer"] and metrics["val/speakers"] == 3 and metrics["val/trials"] == 15


def test_train_export_and_evaluate_the_held_out_split(voices_manifest: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    cfg = compose_cfg("train", [*_overrides(voices_manifest), "trainer.max_steps=3", "trainer.val_check_interval=3",
                                "test=false"], run)
    load_script("train").train(cfg)
    model_dir = run / "model"
    enc = SpeakerEncoder.from_pretrained(model_dir)
    assert enc.cfg.embed_dim == 16 and json.loads((model_dir / "config.json").read_text())["train_speakers"] == 3
    for ckpt in (str(model_dir), str(next((run / "checkpoints").glob("epoch*.ckpt")))):
        ev = compose_cfg("eval", [*_overrides(voices_manifest, train=False), f"ckpt_path={ckpt}"], tmp_path / "eval")
        metrics = load_script("eval").evaluate(ev)
        assert 0 <= metrics["test/eer"] <= 1 and metrics["test/speakers"] == 3 and metrics["test/trials"] == 15
        assert -1 <= metrics["test/sim_floor"] <= 1 and -1 <= metrics["test/sim_ceiling"] <= 1
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["metrics"]["test/eer"] == metrics["test/eer"]


def test_training_manifest_without_speakers_is_a_clear_error(tmp_path: Path) -> None:
    from datamodules.manifest import ManifestError
    from datamodules.speaker import SpeakerDataModule

    write_audio(tmp_path / "a.wav", np.zeros(1600, dtype=np.float32) + 0.1)
    (tmp_path / "train.jsonl").write_text(json.dumps({"audio": "a.wav", "duration": 0.1}) + "\n")
    dm = SpeakerDataModule(train_manifest=str(tmp_path / "train.jsonl"))
    with pytest.raises(ManifestError, match=r"train\.jsonl: row a\.wav has no 'speaker'"):
        dm.model_kwargs()
    with pytest.raises(ValueError, match="speed_perturb"):
        SpeakerDataModule(train_manifest="x", speed_perturb=[0.9, 1.1])
