"""Source tracing: front-ends, back-ends, calibration, learning on held-out clips, open set, hub round trip, report,
and the batch command's handling of bad files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from common.scoring import auroc, expected_calibration_error
from speech.audio import SAMPLE_RATE, write_audio
from speech.source_trace.calibration import Calibration, fit_calibration, fit_temperature, knn_score
from speech.source_trace.config import aasist_tiny, cqt, ecapa_tiny, lfcc, mfcc, resnet18_tiny, source_tracer
from speech.source_trace.frontends import ConstantQ
from speech.source_trace.model import SourceTracerNet
from tests.helpers import compose_cfg, load_script
from tests.source_trace_data import KNOWN, UNKNOWN_SOURCE, clip, tiny_trace_overrides, write_trace_corpus


def test_constant_q_peaks_at_the_tone() -> None:
    cq = ConstantQ(cqt())
    tone = torch.sin(2 * torch.pi * 440.0 * torch.arange(SAMPLE_RATE) / SAMPLE_RATE)[None]
    feats, _ = cq(tone, torch.tensor([SAMPLE_RATE]))
    freqs = 50.0 * 2 ** (torch.arange(84) / 12)
    assert int(feats[0, 20:-20].mean(0).argmax()) == int((freqs - 440.0).abs().argmin())


@pytest.mark.parametrize("frontend", [lfcc(), mfcc(), cqt()], ids=["lfcc", "mfcc", "cqt"])
@pytest.mark.parametrize("backend", [resnet18_tiny(width=8), aasist_tiny(channels=[8, 8, 8], gat_dim=16),
                                     ecapa_tiny()], ids=["resnet", "aasist", "ecapa"])
def test_every_frontend_and_backend_trace_a_padded_batch_as_each_clip_alone(frontend: Any, backend: Any) -> None:
    torch.manual_seed(0)
    net = SourceTracerNet(source_tracer(frontend, backend, embed_dim=16, sources=["a", "b", "c"],
                                        families=["x", "y"])).eval()
    for m in net.modules():  # trained statistics, so that no layer maps the padding's zeros to zeros by chance
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.bias.data.uniform_(-0.5, 0.5)
    wave = torch.randn(2, 16_000) * 0.1
    wave[1, 12_345:] = 0.0
    lens = torch.tensor([16_000, 12_345])
    with torch.no_grad():
        out = net(wave, lens)
        alone = [net(wave[i : i + 1, : int(n)], lens[i : i + 1]).embedding[0] for i, n in enumerate(lens)]
    assert out.source_logits.shape == (2, 3) and out.family_logits.shape == (2, 2)
    assert out.embedding.shape == (2, 16) and torch.isfinite(out.embedding).all()
    for i in range(2):  # the short clip's answer does not depend on the longer one it is padded to
        torch.testing.assert_close(out.embedding[i], alone[i], rtol=1e-4, atol=1e-4)


def test_ssl_frontend_starts_from_a_suite_wav2vec2_directory(tmp_path: Path) -> None:
    from speech.encoders.wav2vec2 import wav2vec2_tiny
    from speech.source_trace.module import SourceTraceModule
    from speech.ssl.config import SSLObjectiveConfig
    from speech.ssl.hub import save_pretrained
    from speech.ssl.model import Wav2Vec2SSL

    enc = wav2vec2_tiny(conv_dims=(16,) * 7, d_model=32, num_layers=2, num_heads=2, ffn_dim=64, pos_conv_kernel=8,
                        pos_conv_groups=2)
    ssl_net = Wav2Vec2SSL(enc, SSLObjectiveConfig(codevector_dim=16, proj_dim=16, num_vars=8))
    save_pretrained(ssl_net, tmp_path / "w2v")
    net = {"frontend": {"kind": "ssl"}, "backend": {"kind": "resnet", "width": 8}, "embed_dim": 16}
    module = SourceTraceModule(net, ["a", "b"], ["x"], ssl_init=str(tmp_path / "w2v"))
    features: Any = module.net.frontend.features
    for k, v in ssl_net.encoder.state_dict().items():
        assert torch.equal(features.encoder.state_dict()[k], v), k
    out = module.net(torch.randn(2, 16_000) * 0.1, torch.tensor([16_000, 16_000]))
    out.source_logits.sum().backward()
    assert features.layer_weights.grad is not None
    assert all(p.grad is None for p in features.encoder.parameters())


def test_temperature_scaling_lowers_nll_and_ece_on_held_out_logits() -> None:
    g = torch.Generator().manual_seed(0)

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        true_logits = torch.randn(n, 5, generator=g) * 1.5
        labels = torch.multinomial(F.softmax(true_logits, -1), 1, generator=g).squeeze(1)
        return true_logits * 4.0, labels  # an overconfident classifier

    dev, test = draw(2000), draw(2000)
    t = fit_temperature(*dev)
    assert 3.0 < t < 5.5
    nll = [float(F.cross_entropy(test[0] / temp, test[1])) for temp in (1.0, t)]
    ece = [expected_calibration_error(F.softmax(test[0] / temp, -1), test[1]) for temp in (1.0, t)]
    assert nll[1] < 0.7 * nll[0] and ece[1] < 0.5 * ece[0] and ece[1] < 0.05


def test_knn_score_leaves_each_dev_clip_out_and_threshold_accepts_95_percent() -> None:
    emb = torch.randn(100, 8)
    assert torch.allclose(knn_score(emb, emb, 1), torch.zeros(100), atol=1e-5)  # itself: distance 0
    assert (knn_score(emb, emb, 1, exclude_self=True) < -1e-3).all()
    logits = torch.randn(100, 4)
    labels = logits.argmax(-1)
    cal = fit_calibration(logits, logits[:, :2], emb, labels, labels % 2, score="knn")
    loo = knn_score(emb, cal.bank, cal.k, exclude_self=True)
    assert abs(float((loo >= cal.threshold).float().mean()) - 0.95) <= 0.02
    assert cal.report["threshold_rule"].startswith("accepts 95%")


@pytest.mark.parametrize("score", ["msp", "energy", "knn"])
def test_leave_one_source_out_threshold_sits_between_known_and_pseudo_unknown(score: str) -> None:
    from speech.source_trace.calibration import own_source_unknown

    g = torch.Generator().manual_seed(0)
    labels = torch.arange(4).repeat_interleave(25)
    centres = torch.randn(4, 16, generator=g) * 3
    emb = centres[labels] + torch.randn(100, 16, generator=g) * 0.5
    logits = 6.0 * F.one_hot(labels, 4).float() + torch.randn(100, 4, generator=g)
    cal = fit_calibration(logits, logits[:, :2], emb, labels, labels % 2, score=score,
                          rule="leave_one_source_out")
    known = cal.scores(logits, emb, exclude_self=True)[score]
    pseudo = own_source_unknown(logits, emb, labels, cal.bank, labels, score, cal.k, cal.source_temperature)
    assert float(pseudo.median()) < cal.threshold <= float(known.median())
    assert cal.report["threshold_rule"].startswith("equal error rate on dev, each known source left out")
    assert cal.report["pseudo_unknown_eer"] < 0.15 and cal.report["known_accepted"] > 0.85


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One short run of experiment=source_trace on the tiny corpus (train, test report, export)."""
    root = tmp_path_factory.mktemp("trace")
    corpus = write_trace_corpus(root / "corpus")
    out = root / "run"
    cfg = compose_cfg("train", ["experiment=source_trace", *tiny_trace_overrides(corpus), "+model.net.backend.width=8",
                                "model.net.embed_dim=32", "trainer.max_steps=60", "trainer.val_check_interval=3",
                                "data.augment.mixup_prob=0.0", "data.balance=false",
                                "model.open_set_score=energy", "model.warmup_steps=5",
                                "callbacks.early_stopping=null"], out)
    metrics = load_script("train").train(cfg)
    return {"corpus": corpus, "out": out, "metrics": metrics}


def test_the_tracer_learns_held_out_clips_and_writes_the_report(trained: dict[str, Any]) -> None:
    m, out = trained["metrics"], trained["out"]
    # 4 known sources: chance is 0.25; test clips were never seen in training.
    assert m["test/acc"] > 0.8 and m["test/macro_f1"] > 0.8, m
    assert m["test/family_acc"] > 0.6
    report = json.loads((out / "report.json").read_text())
    assert set(report["breakdown"]["lang"]["acc"]) == {"eng_Latn", "deu_Latn", "all"}
    assert set(report["open_set"]) == {"msp", "energy", "knn"}
    conf = np.array(report["confusion"]["matrix"])
    assert report["confusion"]["labels"][-1] == "unknown" and conf.sum() == m["test/clips"]
    assert (out / "confusion.png").read_bytes()[:4] == b"\x89PNG"


def test_the_open_set_score_separates_a_held_out_generator(trained: dict[str, Any]) -> None:
    from speech.source_trace.tracer import SourceTracer

    tracer = SourceTracer.from_pretrained(trained["out"] / "model")
    known = [clip(s, 10_000 + i) for s in KNOWN for i in range(4)]
    unknown = [clip(UNKNOWN_SOURCE, 20_000 + i) for i in range(8)]
    scores = [t.score for t in tracer.trace_batch(known + unknown)]
    assert auroc(scores, [1] * len(known) + [0] * len(unknown)) > 0.85
    report = json.loads((trained["out"] / "report.json").read_text())
    assert max(v["auroc"] for v in report["open_set"].values()) > 0.85


def test_save_load_round_trip_is_exact(trained: dict[str, Any], tmp_path: Path) -> None:
    from speech.source_trace.hub import load_tracer
    from speech.source_trace.module import SourceTraceModule

    model_dir = trained["out"] / "model"
    net, cal, config = load_tracer(model_dir)
    assert config["model_type"] == "source_tracer" and cal.score == "energy" and np.isfinite(cal.threshold)
    assert cal.source_temperature != 1.0 and cal.bank.shape[1] == 32
    module = SourceTraceModule.from_directory(model_dir)
    again, cal2, _ = load_tracer(module.export(tmp_path / "again"))
    wave = torch.from_numpy(np.stack([clip("noise_synth", 5), clip("square_vocoder", 6)]))
    lens = torch.tensor([SAMPLE_RATE, SAMPLE_RATE])
    a, b = net(wave, lens), again.eval()(wave, lens)
    assert torch.equal(a.source_logits, b.source_logits) and torch.equal(a.embedding, b.embedding)
    assert torch.equal(cal.bank, cal2.bank) and cal.threshold == cal2.threshold
    assert cal.source_temperature == cal2.source_temperature and cal.report == cal2.report


def test_evaluate_writes_the_report_for_an_exported_model(trained: dict[str, Any], tmp_path: Path) -> None:
    from common.evaluation import evaluate

    tiny = [o for o in tiny_trace_overrides(trained["corpus"]) if not o.startswith("callbacks.")]
    cfg = compose_cfg("eval", ["experiment=source_trace", *tiny,
                               f"ckpt_path={trained['out'] / 'model'}"], tmp_path)
    metrics = evaluate(cfg, cfg.ckpt_path)
    assert metrics["test/macro_f1"] == pytest.approx(trained["metrics"]["test/macro_f1"], abs=1e-6)
    assert "test/open_eer" in metrics and (tmp_path / "report.json").is_file()


def test_trace_source_skips_corrupt_empty_silent_and_short_files(trained: dict[str, Any], tmp_path: Path) -> None:
    clips = tmp_path / "in"
    clips.mkdir()
    for i, source in enumerate(KNOWN):
        write_audio(clips / f"good_{source}.wav", clip(source, 30_000 + i))
    (clips / "corrupt.wav").write_bytes(b"RIFF not really a wave file")
    (clips / "empty.wav").write_bytes(b"")
    write_audio(clips / "silent.wav", np.zeros(SAMPLE_RATE, dtype=np.float32))
    write_audio(clips / "short.wav", clip("noise_synth", 1)[:800])
    out = tmp_path / "out.jsonl"
    script = load_script("trace_source")
    from common.runner import compose_and_run

    code = compose_and_run("trace_source", [f"model={trained['out'] / 'model'}", f"input={clips}",
                                            f"output={out}", "progress=false"], script.run)
    assert code == 3
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(Path(r["path"]).name for r in rows) == sorted(f"good_{s}.wav" for s in KNOWN)
    assert sum(r["source"] == r["path"].split("good_")[1][:-4] for r in rows) >= 3
    assert all(abs(sum(r["source_probs"].values()) - 1) < 1e-4 for r in rows)
    failed = {Path(r["path"]).name: r["reason"] for r in map(json.loads, (tmp_path / "out.jsonl.failed.jsonl")
                                                               .read_text().splitlines())}
    assert set(failed) == {"corrupt.wav", "empty.wav", "silent.wav", "short.wav"}
    assert "unreadable" in failed["corrupt.wav"] and "empty" in failed["empty.wav"]
    assert "silent" in failed["silent.wav"] and "too short" in failed["short.wav"]
    assert all(name in reason for name, reason in failed.items())
    # A re-run finds every good clip done.
    assert compose_and_run("trace_source", [f"model={trained['out'] / 'model'}", f"input={clips}",
                                            f"output={out}", "progress=false"], script.run) == 3
    assert len(out.read_text().splitlines()) == 4


def test_training_augmentation_leaves_the_held_out_channel_out(tmp_path: Path) -> None:
    from datamodules.source_trace import SourceTraceDataModule

    corpus = write_trace_corpus(tmp_path / "c", per_split=(1, 1, 1))
    info = json.loads((corpus / "protocols/main/protocol.json").read_text())
    info["held_out"] = {"channels": ["opus_16k"]}
    (corpus / "protocols/main/protocol.json").write_text(json.dumps(info))
    dm = SourceTraceDataModule(str(corpus), num_workers=0, crop_seconds=0.5, batch_size=4,
                               augment={"mixup_prob": 1.0})
    ds: Any = dm.train_dataloader().dataset
    assert ds.augment is not None and "opus_16k" not in ds.augment.codecs and ds.augment.cfg.noise_prob > 0
    batch = next(iter(dm.train_dataloader()))
    assert batch["wave"].shape == (4, 8000) and "mix" in batch
    test = dm.rows("test")
    assert {r["source"] for r in test} == {*KNOWN, UNKNOWN_SOURCE}
    labels = next(iter(dm.test_dataloader()))["source"]
    assert (labels == -1).sum() == 1


def test_a_row_without_a_source_is_named_in_the_error(tmp_path: Path) -> None:
    from datamodules.manifest import ManifestError
    from datamodules.source_trace import SourceTraceDataModule

    corpus = write_trace_corpus(tmp_path / "c", per_split=(1, 1, 1))
    dev = corpus / "protocols/main/dev.jsonl"
    dev.write_text(dev.read_text() + json.dumps({"id": "x", "audio": "clips/x.wav", "family": "f"}) + "\n")
    with pytest.raises(ManifestError, match=r"dev\.jsonl: row 5 \(clips/x\.wav\) lacks source"):
        SourceTraceDataModule(str(corpus)).rows("val")


def test_calibration_file_round_trip(tmp_path: Path) -> None:
    cal = Calibration(1.7, 0.9, "energy", 2.5, 3, torch.randn(6, 4), {"nll_raw": 1.0})
    cal.save(tmp_path / "c.safetensors")
    back = Calibration.load(tmp_path / "c.safetensors")
    assert torch.equal(back.bank, cal.bank) and (back.score, back.threshold, back.k) == ("energy", 2.5, 3)


def test_batches_are_sharded_over_ranks(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from datamodules.source_trace import SourceTraceDataModule

    corpus = write_trace_corpus(tmp_path / "c", per_split=(5, 3, 3))
    seen: dict[str, list[list[str]]] = {"train": [], "test": []}
    steps: dict[str, list[int]] = {"train": [], "test": []}
    for rank in (0, 1):
        dm = SourceTraceDataModule(str(corpus), num_workers=0, crop_seconds=0.5, batch_size=3, eval_batch_size=2,
                                   augment={"mixup_prob": 0.0, "codec_prob": 0.0})
        dm.trainer = SimpleNamespace(global_rank=rank, world_size=2)  # type: ignore[assignment]
        for stage, loader in (("train", dm.train_dataloader()), ("test", dm.test_dataloader())):
            batches = [b["meta"]["id"] for b in loader]
            seen[stage].append([i for b in batches for i in b])
            steps[stage].append(len(batches))
    for stage, (r0, r1) in seen.items():
        assert steps[stage][0] == steps[stage][1]  # every rank steps as often (a short one repeats a batch)
        everything = {r["id"] for r in SourceTraceDataModule(str(corpus)).rows(stage)}
        assert len(set(r0) & set(r1)) < len(r0)
        if stage == "test":
            assert set(r0) | set(r1) == everything
        else:  # full training batches only (a batch of one clip breaks batch norm): 20 clips, 6 batches of 3
            assert set(r0) | set(r1) <= everything and len(r0) == len(r1) == 9


def test_protocol_table_evaluates_then_reads_back_the_reports(trained: dict[str, Any], tmp_path: Path) -> None:
    from benchmarks.source_trace_protocols import main

    argv = [f"corpus={trained['corpus']}", f"models.main=[{trained['out'] / 'model'}]", "models.mono=[]",
            f"out={tmp_path}", "threads=1"]
    first = main(argv)
    assert [r["protocol"] for r in first["rows"]] == ["main"] and first["rows"][0]["backend"] == "resnet"
    assert (tmp_path / "run" / "main" / "report.json").is_file()
    assert "| main | main | lfcc | resnet |" in (tmp_path / "source_trace_protocols.md").read_text()
    assert main(argv)["rows"] == first["rows"]  # the second run reads the report back
