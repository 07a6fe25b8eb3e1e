"""The real configs are part of the tests: every experiment composes, instantiates and runs a step."""

from __future__ import annotations

from pathlib import Path

import hydra
import pytest

from tests.helpers import CONFIGS, compose_cfg, load_script, tiny_overrides, tiny_text_overrides

EXPERIMENTS = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml"))
MODELS = sorted(p.stem for p in (CONFIGS / "model").glob("*.yaml"))


def test_every_experiment_header_shows_its_command() -> None:
    for name in EXPERIMENTS:
        text = (CONFIGS / "experiment" / f"{name}.yaml").read_text()
        assert text.startswith("# @package _global_"), name
        assert f"scripts/train.py experiment={name}" in text, name


@pytest.fixture(scope="session")
def tiny_text_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.text_data import write_tiny_corpus

    return write_tiny_corpus(tmp_path_factory.mktemp("textcorpus"))


def _family(overrides: list[str], tmp_path: Path) -> tuple[str, str]:
    """The (datamodule target, encoder target) a config composes to."""
    cfg = compose_cfg("train", overrides, tmp_path)
    return cfg.data._target_, str(cfg.model.get("encoder", {}).get("_target_", ""))


def _tiny(overrides: list[str], request: pytest.FixtureRequest, tmp_path: Path, shrink: bool) -> list[str]:
    """Tiny data of the config's own kind, and (``shrink``) a tiny network where the family has shrink keys."""
    data_target, encoder = _family(overrides, tmp_path)
    if data_target == "datamodules.text.ParallelTextDataModule":
        tiny = tiny_text_overrides(request.getfixturevalue("tiny_text_corpus"))
    else:
        tiny = tiny_overrides(request.getfixturevalue("tiny_corpus"))
    # The shrink keys name conformer and sentence-encoder fields; other encoders run at their tiny sizes.
    keep_shrink = shrink and ("conformer" in encoder or "sentence_encoder" in encoder)
    return [o for o in tiny if keep_shrink or not o.startswith("+model.")]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_fast_dev_run(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    tiny = _tiny([f"experiment={name}"], request, tmp_path, shrink=True)
    cfg = compose_cfg("train", [f"experiment={name}", "debug=fdr", *tiny], tmp_path)
    metrics = load_script("train").train(cfg)
    assert metrics["train/loss"] > 0


def _experiment_for(model: str, tmp_path: Path) -> list[str]:
    """An experiment whose LightningModule is the model config's (its family's data and settings)."""
    target = compose_cfg("train", [f"model={model}"], tmp_path).model._target_
    for name in EXPERIMENTS:
        if compose_cfg("train", [f"experiment={name}"], tmp_path).model._target_ == target:
            return [f"experiment={name}"]
    return []


@pytest.mark.parametrize("model", MODELS)
def test_model_configs_instantiate(model: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    overrides = [*_experiment_for(model, tmp_path), f"model={model}"]
    cfg = compose_cfg("train", [*overrides, *_tiny(overrides, request, tmp_path, shrink=False)], tmp_path)
    dm = hydra.utils.instantiate(cfg.data)
    module = hydra.utils.instantiate(cfg.model, **dm.model_kwargs())
    assert sum(p.numel() for p in module.parameters()) > 1e5


@pytest.mark.parametrize("preset", ["trainer=cpu", "trainer=gpu", "trainer=ddp", "debug=fdr", "debug=overfit"])
def test_presets_compose(preset: str, tmp_path: Path) -> None:
    cfg = compose_cfg("train", ["experiment=asr_lowres", preset], tmp_path)
    assert cfg.trainer._target_ == "lightning.pytorch.Trainer"


def test_speech_shards_data_config_composes(tmp_path: Path) -> None:
    # No experiment names data=speech_shards; tests/test_shards.py trains on it with shards of the tiny corpus.
    cfg = compose_cfg("train", ["experiment=asr_lowres", "data=speech_shards", "data.train_shards=shards"], tmp_path)
    assert cfg.data._target_ == "datamodules.shards.SpeechShardDataModule"
    assert cfg.data.train_shards == "shards" and cfg.data.max_batch_seconds == 80 and cfg.data.val_manifest


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
