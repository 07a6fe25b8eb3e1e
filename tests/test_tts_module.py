"""The TTS acoustic model's vocabulary, data, training module, configs and model directory."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest
import torch

from datamodules.manifest import ManifestError
from datamodules.tts import TTSDataModule, crop
from speech.tts.config import flow_tts
from speech.tts.flow import flow_loss, solve
from speech.tts.hub import from_pretrained, save_pretrained
from speech.tts.model import FlowTTS
from speech.tts.module import FlowTTSModule
from speech.tts.vocab import UnitVocab
from tests.helpers import compose_cfg, load_script
from tests.tts_data import FRAMES_PER_UNIT, TINY_NET, tiny_tts_overrides, write_tts_corpus

TINY = {"dim": 48, "depth": 2, "heads": 2, "unit_dim": 16, "conv_pos_groups": 4, "dropout": 0.0}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tts_corpus(tmp_path_factory.mktemp("tts"))


def datamodule(corpus: Path, **kw: object) -> TTSDataModule:
    return TTSDataModule(f"{corpus}/train.jsonl", f"{corpus}/dev.jsonl", f"{corpus}/test.jsonl", num_workers=0,
                         stats_utterances=4, **kw)  # type: ignore[arg-type]


def test_vocab_encodes_strictly_and_round_trips(tmp_path: Path) -> None:
    vocab = UnitVocab.build([("Hallo Welt!", "deu_Latn"), ("кіт", "ukr_Cyrl")])
    assert vocab.tokens[:2] == ["<pad>", "<unk>"] and " " in vocab.units and "!" not in vocab.units
    assert vocab.encode_text("hallo", "deu_Latn")[1:-1] == [vocab.index[c] for c in "hallo"]
    assert vocab.encode(["h", "ß"]) == [vocab.index["h"], vocab.unk_id]
    with pytest.raises(ValueError, match="cannot say 'ßж'"):
        vocab.encode_text("hell ßж", "deu_Latn")
    with pytest.raises(ValueError, match="nothing to say"):
        vocab.encode_text("?!", "deu_Latn")
    vocab.save(tmp_path / "units.json")
    assert UnitVocab.load(tmp_path / "units.json") == vocab
    (tmp_path / "bad.json").write_text('{"tokens": ["a"]}')
    with pytest.raises(ValueError, match=r"bad\.json: not a TTS unit vocabulary"):
        UnitVocab.load(tmp_path / "bad.json")


def test_crop_keeps_units_consistent_with_the_window() -> None:
    assert crop([3, 2, 4], 2, 4) == ([0, 1, 2], [1, 2, 1])
    assert crop([3, 2, 4], 3, 2) == ([1], [2])
    keep, durs = crop([5] * 10, 7, 20)
    assert sum(durs) == 20 and keep == list(range(1, 6))


def test_batches_hold_frames_masks_and_durations(corpus: Path, tmp_path: Path) -> None:
    dm = datamodule(corpus, max_frames=30, bad_audio_log=str(tmp_path / "bad.jsonl"))
    kw = dm.model_kwargs()
    assert kw["langs"] == ["deu_Latn", "ukr_Cyrl"] and " " in kw["units"] and kw["mel_std"] > 0
    batch = next(iter(dm.train_dataloader()))
    b, t, m = batch["mel"].shape
    assert m == 80 and t <= 30 and batch["frame_mask"].shape == (b, t)
    assert torch.equal(batch["durations"].sum(-1), batch["frame_lens"])
    assert all(len(u) == int((d > 0).sum()) for u, d in zip(batch["units"], batch["durations"]))
    assert (batch["mel"][~batch["frame_mask"]] == 0).all() and set(batch["langs"]) <= set(kw["langs"])
    full = next(iter(datamodule(corpus).val_dataloader()))  # uncropped: whole units of FRAMES_PER_UNIT frames
    assert all(set(d[d > 0].tolist()) == {FRAMES_PER_UNIT} for d in full["durations"])


def test_bad_alignments_are_named(corpus: Path, tmp_path: Path) -> None:
    row = json.loads((corpus / "train.jsonl").read_text().splitlines()[0])
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({**row, "durations": row["durations"][:-1]}) + "\n")
    with pytest.raises(ManifestError, match=r"bad\.jsonl: row 1 .*units but .* durations"):
        TTSDataModule(str(bad)).rows("train")
    off = tmp_path / "off.jsonl"
    off.write_text(json.dumps({**row, "audio": str(corpus / row["audio"]), "durations": [*row["durations"][:-1], 9]})
                   + "\n" + json.dumps({**row, "audio": str(corpus / row["audio"])}) + "\n")
    log = tmp_path / "log.jsonl"
    dm = TTSDataModule(str(off), str(off), num_workers=0, bad_audio_log=str(log), mel_stats=[-5.0, 2.0])
    batches = [b for b in dm.val_dataloader() if b is not None]
    assert sum(len(b["units"]) for b in batches) == 1 and "realign" in log.read_text()


def test_tiny_model_overfits_one_batch(corpus: Path) -> None:
    torch.manual_seed(0)
    dm = datamodule(corpus, max_batch_frames=10**6, num_buckets=1)  # all 8 training utterances in one batch
    module = FlowTTSModule(flow_tts(**TINY), **dm.model_kwargs())
    batch = next(iter(dm.train_dataloader()))
    assert batch["mel"].shape[0] == 8
    x1, fmask, units = module.inputs(batch)
    held = lambda: float(flow_loss(module.net, x1, fmask, units, module.net.cfg,
                                   torch.Generator().manual_seed(7)))
    before = held()
    opt = torch.optim.AdamW(module.parameters(), lr=3e-3)
    for _ in range(120):
        opt.zero_grad()
        flow_loss(module.net, x1, fmask, units, module.net.cfg).backward()
        opt.step()
    module.eval()
    assert held() < before / 2  # measured: 2.3 -> 0.9


def test_hub_round_trip_gives_identical_outputs(tmp_path: Path) -> None:
    vocab = UnitVocab(list(" abc"))
    torch.manual_seed(0)
    model = FlowTTS(flow_tts(**TINY, vocab_size=len(vocab), mel_mean=-4.2, mel_std=1.7)).eval()
    out = save_pretrained(model, vocab, tmp_path / "m", langs=["deu_Latn"])
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "tts_flow" and config["mel"]["hop"] == 256 and config["mel_mean"] == -4.2
    loaded, loaded_vocab = from_pretrained(out)
    assert loaded_vocab == vocab and loaded.cfg == model.cfg
    cond, units = torch.randn(1, 10, 80), torch.randint(0, len(vocab), (1, 10))
    cmask = torch.arange(10)[None] < 3
    run = lambda m: solve(m, cond, cmask, units, nfe=2, guidance=1.0,
                          generator=torch.Generator().manual_seed(0))
    assert torch.equal(run(model), run(loaded))
    with pytest.raises(ValueError, match="vocabulary has 3 ids"):
        save_pretrained(model, UnitVocab(["a"]), tmp_path / "x")


def test_experiment_fast_dev_run_then_evaluate_and_export(corpus: Path, tmp_path: Path) -> None:
    cfg = compose_cfg("train", ["experiment=tts_lowres", *tiny_tts_overrides(corpus), *TINY_NET,
                               "model.val_sample_nfe=2", "debug=fdr"], tmp_path)
    assert cfg.monitor == "val/loss" and cfg.model.net._target_ == "speech.tts.config.flow_tts_tiny"
    metrics = load_script("train").train(cfg)
    assert metrics["train/loss"] > 0 and metrics["objective"] == metrics["val/loss"]
    assert metrics["val/sample_mse"] > 0

    import hydra

    dm = hydra.utils.instantiate(cfg.data, _convert_="all")
    module = hydra.utils.instantiate(cfg.model, _convert_="all", **dm.model_kwargs())
    trainer = L.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, limit_val_batches=0, enable_model_summary=False)
    trainer.fit(module, datamodule=dm)
    ckpt = tmp_path / "tts.ckpt"
    trainer.save_checkpoint(ckpt)
    result = FlowTTSModule.evaluate(cfg, str(ckpt))
    assert result["test/loss"] > 0 and (tmp_path / "metrics.json").exists()
    model, vocab = from_pretrained(module.export(tmp_path / "model"))
    assert vocab.units == dm.units() and model.cfg.mel_mean == pytest.approx(dm.mel_stats()[0])
