"""The TTS duration model: masked loss, span masks, rounding, learning, hub round trip, experiment=tts_duration."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import torch

from datamodules.manifest import ManifestError
from speech.tts.duration import (
    DurationModel,
    duration,
    duration_loss,
    duration_tiny,
    round_durations,
    span_mask,
)
from tests.helpers import compose_cfg, load_script

TINY = {"d_model": 32, "num_layers": 1, "num_heads": 2, "ffn_dim": 64, "dropout": 0.0}
LETTERS = "abcdefgh"


def _rule(unit: str) -> int:
    """The deterministic durations the learning test teaches: each letter its own length, silence 2 frames."""
    return 2 if unit == " " else 3 + 2 * LETTERS.index(unit) % 7


def _rows(n: int, seed: int, lang: str = "deu_Latn") -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        units = [" ", *rng.choices(LETTERS + " ", k=rng.randint(3, 12)), " "]
        units[1] = units[1] if units[1] != " " else "a"
        rows.append({"audio": f"utt{seed}_{i}.wav", "text": "".join(units).strip(), "lang": lang, "units": units,
                     "durations": [_rule(u) for u in units]})
    return rows


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_the_loss_counts_only_the_masked_units() -> None:
    durs = torch.tensor([[2, 5, 7, 3], [4, 6, 0, 0]])
    unit_mask = durs > 0
    predict = torch.tensor([[False, True, True, False], [True, False, True, True]])
    exact = torch.log1p(durs.float())
    wrong_outside = exact + 5.0 * (~predict)  # every unit not predicted is off by 5
    assert duration_loss(wrong_outside, durs, predict, unit_mask).item() == pytest.approx(0.0)
    # Off by 1 on the masked real units only (padding is masked too but not counted): the mean is 1.
    assert duration_loss(exact + 1.0 * predict, durs, predict, unit_mask).item() == pytest.approx(1.0)
    off_on_padding = exact + 9.0 * (~unit_mask)
    assert duration_loss(off_on_padding, durs, predict, unit_mask).item() == pytest.approx(0.0)


def test_span_masks_are_one_contiguous_span_of_the_asked_share() -> None:
    lens = torch.tensor([1, 5, 20, 50] * 50)
    unit_mask = torch.arange(50)[None] < lens[:, None]
    mask = span_mask(unit_mask, 0.3, 0.6, torch.Generator().manual_seed(0))
    assert not (mask & ~unit_mask).any()
    for row, n in zip(mask, lens.tolist()):
        idx = row.nonzero()[:, 0]
        assert len(idx) >= 1 and int(idx[-1] - idx[0]) + 1 == len(idx)  # contiguous
        if n >= 20:
            assert 0.25 <= len(idx) / n <= 0.65
    full = span_mask(unit_mask, 1.0, 1.0)
    assert torch.equal(full, unit_mask)


def test_rounding_keeps_the_total_and_the_minimums() -> None:
    assert round_durations([1.4, 1.4, 1.4], [1, 1, 1]) == [1, 2, 1]  # running sum 1.4, 2.8, 4.2 -> 1, 3, 4
    out = round_durations([0.0, 0.1, 6.0, 0.2, 0.0], [0, 1, 1, 1, 0], total=20)
    assert sum(out) == 20 and min(out[1:4]) >= 1
    assert round_durations([0.0, 0.0], [0, 0], total=7) == [4, 3]
    with pytest.raises(ValueError, match="can't hold"):
        round_durations([1.0, 1.0, 1.0], [1, 1, 1], total=2)


def test_predict_keeps_the_prompt_and_scales_the_rest() -> None:
    torch.manual_seed(0)
    model = DurationModel(duration(vocab_size=10, num_langs=2, **TINY)).eval()
    model.head.bias.data.fill_(math.log1p(4.0))  # about 4 frames a unit before any training
    units = torch.tensor([[2, 3, 4, 5, 6, 2], [2, 7, 8, 2, 0, 0]])
    ctx = torch.tensor([[0, 9, 4, 0, 0, 0], [0, 0, 0, 0, 0, 0]])
    ctx_mask = torch.tensor([[False, True, True, False, False, False], [False] * 6])
    out = model.predict(units, ctx, ctx_mask)
    assert out[0, 1:3].tolist() == [9, 4] and (out[units == 0] == 0).all()
    assert (out[0, 3:5] >= 1).all() and (out[1, 1:3] >= 1).all()
    fixed = model.predict(units, ctx, ctx_mask, total=[40, 11])
    assert fixed.sum(1).tolist() == [40, 11] and fixed[0, 1:3].tolist() == [9, 4]
    slow = model.predict(units, ctx, ctx_mask, scale=3.0)
    assert slow[1].sum() > out[1].sum()


def test_a_tiny_model_learns_durations_that_depend_on_the_unit() -> None:
    from datamodules.tts_duration import collate_durations
    from speech.tts.duration_module import DurationModule, frame_error

    torch.manual_seed(0)
    train, held_out = _rows(256, seed=1), _rows(64, seed=2)
    module = DurationModule(TINY, units=[" ", *LETTERS], langs=["deu_Latn"], mask_frac=(0.1, 1.0))
    opt = torch.optim.Adam(module.parameters(), lr=3e-3)
    val = collate_durations(held_out)

    def held_out_mae() -> float:
        module.eval()
        with torch.no_grad():
            _, pred, durs, predict = module.step(val, predict=torch.ones_like(val["durations"], dtype=torch.bool))
        module.train()
        return float(frame_error(pred, durs, predict))

    before = held_out_mae()
    for step in range(60):
        batch = collate_durations(train[(step * 32) % 256 : (step * 32) % 256 + 32])
        loss, *_ = module.step(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = held_out_mae()
    assert before > 3.0 and after < 0.5, (before, after)


def test_hub_round_trip_and_a_broken_directory(tmp_path: Path) -> None:
    from common.hub import ModelDirError
    from speech.tts.duration_hub import from_pretrained
    from speech.tts.duration_module import DurationModule

    torch.manual_seed(0)
    module = DurationModule(TINY, units=[" ", *LETTERS], langs=["deu_Latn", "ukr_Cyrl"])
    out = module.export(tmp_path / "model")
    assert json.loads((out / "config.json").read_text())["model_type"] == "tts_duration"
    loaded = from_pretrained(out)
    assert loaded.langs == ["deu_Latn", "ukr_Cyrl"] and loaded.vocab == module.vocab
    units = [[" ", "a", "b", " ", "c", " "], [" ", "h", " "]]
    module.net.eval()
    ids = torch.tensor([module.vocab.encode(units[0]), [*module.vocab.encode(units[1]), 0, 0, 0]])
    langs = torch.tensor([1, 2])
    expected = module.net.predict(ids, langs=langs)
    got = loaded.predict(units, ["deu_Latn", "ukr_Cyrl"])
    assert got == [expected[0].tolist(), expected[1, :3].tolist()]
    assert loaded.predict(units, ["deu_Latn", None], known=[[None, 7, None, None, None, None], []])[0][1] == 7
    with pytest.raises(ValueError, match="cannot say"):
        loaded.predict([[" ", "z", " "]], ["deu_Latn"])
    (out / "units.json").unlink()
    with pytest.raises(ModelDirError, match=r"units\.json is missing"):
        from_pretrained(out)


def test_a_misaligned_row_is_named(tmp_path: Path) -> None:
    from datamodules.tts_duration import read_durations

    rows = _rows(3, seed=0)
    rows[1]["durations"] = rows[1]["durations"][:-1]
    path = _write(tmp_path / "bad.jsonl", rows)
    with pytest.raises(ManifestError, match=r"bad.jsonl: row 2 .* units but .* durations"):
        read_durations(str(path))


def test_experiment_tts_duration_runs_fast_dev_run(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for split, seed in (("train", 1), ("dev", 2), ("test", 3)):
        _write(data / f"{split}.jsonl", _rows(24, seed))
    overrides = [
        "experiment=tts_duration", "debug=fdr", f"data.train_manifest={data}/train.jsonl",
        f"data.val_manifest={data}/dev.jsonl", f"data.test_manifest={data}/test.jsonl", "data.batch_size=8",
        *(f"++model.net.{k}={v}" for k, v in TINY.items()), "trainer.precision=32-true", "logger=csv",
        "callbacks.progress_bar=null", "trainer.enable_progress_bar=false",
    ]
    cfg = compose_cfg("train", overrides, tmp_path / "run")
    assert cfg.model.net._target_ == "speech.tts.duration.duration_tiny" and cfg.monitor == "val/l1"
    metrics = load_script("train").train(cfg)
    assert metrics["train/loss"] > 0 and metrics["objective"] == metrics["val/l1"]
    assert metrics["val/mae"] >= 0 and metrics["val/mae_no_prompt"] >= 0


def test_named_sizes() -> None:
    n_tiny = sum(p.numel() for p in DurationModel(duration_tiny(vocab_size=100, num_langs=9)).parameters())
    assert 1e5 < n_tiny < 1e6
