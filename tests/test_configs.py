"""The real configs are part of the tests: every experiment composes, instantiates and runs a step."""

from __future__ import annotations

from pathlib import Path

import hydra
import pytest

from tests.helpers import CONFIGS, compose_cfg, load_script, tiny_overrides

EXPERIMENTS = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml"))
MODELS = sorted(p.stem for p in (CONFIGS / "model").glob("*.yaml"))


def test_every_experiment_header_shows_its_command() -> None:
    for name in EXPERIMENTS:
        text = (CONFIGS / "experiment" / f"{name}.yaml").read_text()
        assert text.startswith("# @package _global_"), name
        assert f"scripts/train.py experiment={name}" in text, name


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_fast_dev_run(name: str, tiny_corpus: Path, tmp_path: Path) -> None:
    overrides = [f"experiment={name}", "debug=fdr", *tiny_overrides(tiny_corpus)]
    cfg = compose_cfg("train", overrides, tmp_path)
    metrics = load_script("train").train(cfg)
    assert metrics["train/loss"] > 0


@pytest.mark.parametrize("model", MODELS)
def test_model_configs_instantiate(model: str, tiny_corpus: Path, tmp_path: Path) -> None:
    cfg = compose_cfg("train", [f"model={model}", *tiny_overrides(tiny_corpus)[:4]], tmp_path)
    dm = hydra.utils.instantiate(cfg.data)
    module = hydra.utils.instantiate(cfg.model, **dm.model_kwargs())
    assert sum(p.numel() for p in module.parameters()) > 1e6


@pytest.mark.parametrize("preset", ["trainer=cpu", "trainer=gpu", "trainer=ddp", "debug=fdr", "debug=overfit"])
def test_presets_compose(preset: str, tmp_path: Path) -> None:
    cfg = compose_cfg("train", ["experiment=asr_lowres", preset], tmp_path)
    assert cfg.trainer._target_ == "lightning.pytorch.Trainer"


def test_arbitrary_overrides_compose(tmp_path: Path) -> None:
    cfg = compose_cfg(
        "train",
        ["experiment=asr_lowres", "trainer.max_epochs=3", "data.max_batch_seconds=120", "model=asr_conformer_small"],
        tmp_path,
    )
    assert cfg.trainer.max_epochs == 3 and cfg.data.max_batch_seconds == 120
    assert cfg.model.encoder._target_.endswith("conformer_small")


@pytest.mark.parametrize("name", ["eval", "make_corpus"])
def test_other_entry_configs_compose(name: str, tmp_path: Path) -> None:
    cfg = compose_cfg(name, ["ckpt_path=x.ckpt"] if name == "eval" else [], tmp_path)
    assert cfg is not None


def test_transcribe_config_takes_model_as_a_path(tmp_path: Path) -> None:
    cfg = compose_cfg("transcribe", ["model=runs/x/model", "input=in", "output=o.jsonl"], tmp_path,
                      root=CONFIGS / "inference")
    assert cfg.model == "runs/x/model"
