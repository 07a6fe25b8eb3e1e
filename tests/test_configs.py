"""The real configs are part of the tests: every experiment composes, instantiates and runs a step; sweeps report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import hydra
import lightning as L
import pytest
from omegaconf import DictConfig, OmegaConf

from tests.helpers import CONFIGS, ROOT, compose_cfg, load_script, tiny_overrides, tiny_text_overrides

EXPERIMENTS = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml"))
MODELS = sorted(p.stem for p in (CONFIGS / "model").glob("*.yaml"))

# Tiny sizes for the named builders that model configs call, by exact ``_target_``; other builders run at their size
# (the parameter budget in test_experiment_fast_dev_run then asks for an entry here).
SHRINK: dict[str, dict[str, object]] = {
    "speech.asr.config.conformer_tiny": {"d_model": 32, "num_layers": 1, "num_heads": 2, "conv_kernel": 5},
    "speech.asr.llm.config.decoder_lm_tiny": {"d_model": 32, "num_layers": 1, "num_heads": 2},
    "speech.ssl.config.wav2vec2_tiny": {"conv_dims": "[32,32,32,32,32,32,32]", "d_model": 32, "num_layers": 1,
                                        "num_heads": 2, "ffn_dim": 64, "pos_conv_kernel": 8, "pos_conv_groups": 2},
    "text.lm_config.text_lm_tiny": {"d_model": 32, "num_layers": 1, "num_heads": 2, "ffn_dim": 64},
    "speech.tts.config.flow_tts_tiny": {"dim": 32, "depth": 2, "heads": 2, "unit_dim": 16, "conv_pos_groups": 4},
    "speech.tts.duration.duration_tiny": {"d_model": 32, "num_layers": 1, "num_heads": 2, "ffn_dim": 64},
    "text.sentence_encoder.sentence_encoder_tiny": {"d_model": 32, "num_layers": 1, "num_heads": 2, "ffn_dim": 64,
                                                    "embed_dim": 16},
    "text.sentence_encoder.sentence_encoder_bag": {"d_model": 32, "num_heads": 2, "ffn_dim": 64, "embed_dim": 16,
                                                   "bag_buckets": 4096},
    "vision.flame.config.flame_tiny": {"width": 32, "depth": 1, "heads": 2, "patch_size": 8, "projector_hidden": 32},
    "vision.flame.clip_baseline.clip_baseline_tiny": {"width": 32, "depth": 1, "heads": 2, "patch_size": 8,
                                                      "projector_hidden": 32, "text_d_model": 32, "text_num_layers": 1,
                                                      "text_num_heads": 2, "text_ffn_dim": 64, "text_embed_dim": 16},
    "music.clamp.config.clamp3_tiny": {"sym_d_model": 32, "sym_num_layers": 1, "sym_num_heads": 2, "sym_ffn_dim": 64,
                                       "audio_d_model": 32, "audio_num_layers": 1, "audio_num_heads": 2,
                                       "audio_ffn_dim": 64, "text_d_model": 32, "text_num_layers": 1,
                                       "text_num_heads": 2, "text_ffn_dim": 64, "text_embed_dim": 16},
    "vision.sign.config.slt_tiny": {"enc_d_model": 32, "enc_part_dim": 16, "enc_num_layers": 1, "enc_num_heads": 2,
                                    "enc_ffn_dim": 64, "dec_d_model": 32, "dec_num_layers": 1, "dec_num_heads": 2,
                                    "dec_ffn_dim": 64},
}
# Recipes that start from another model (model.init_encoder): the LightningModule -> a fixture that makes a tiny one.
INIT = {"speech.asr.llm.module.LLMASRModule": "tiny_ctc_dir"}


@pytest.fixture(scope="session")
def tiny_text_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.text_data import write_tiny_corpus

    return write_tiny_corpus(tmp_path_factory.mktemp("textcorpus"))


@pytest.fixture(scope="session")
def tiny_tts_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tts_data import write_tts_corpus

    return write_tts_corpus(tmp_path_factory.mktemp("ttscorpus"))


@pytest.fixture(scope="session")
def tiny_vision_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.vision_data import write_tiny_vision_corpus

    return write_tiny_vision_corpus(tmp_path_factory.mktemp("visioncorpus"))


@pytest.fixture(scope="session")
def tiny_trace_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.source_trace_data import write_trace_corpus

    return write_trace_corpus(tmp_path_factory.mktemp("tracecorpus"), per_split=(2, 2, 2))


@pytest.fixture(scope="session")
def tiny_sign_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from tests.slt_data import write_sign_corpus, write_tiny_encoder

    corpus = write_sign_corpus(tmp_path_factory.mktemp("signcorpus"), n_train=16)
    return corpus, write_tiny_encoder(corpus / "encoder", corpus)


@pytest.fixture(scope="session")
def tiny_music_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.clamp_data import write_music_corpus

    return write_music_corpus(tmp_path_factory.mktemp("musiccorpus"), n_train=12, n_test=6, audio=True)


@pytest.fixture(scope="session")
def tiny_clamp_dir(tiny_music_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.clamp_data import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("clamp"), tiny_music_corpus)


@pytest.fixture(scope="session")
def tiny_flame_cache(tiny_vision_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.flame_data import write_tiny_flame_cache

    return write_tiny_flame_cache(tmp_path_factory.mktemp("flamecache"), tiny_vision_corpus)


@pytest.fixture(scope="session")
def tiny_ctc_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CTC model directory, as experiment=asr_lowres exports it, with a tiny random conformer."""
    from speech.asr.config import CTCModelConfig
    from speech.asr.hub import save_pretrained
    from speech.asr.model import CTCModel
    from speech.encoders.conformer import ConformerConfig
    from text.char_vocab import CharVocab

    vocab = CharVocab(list("abcdefgh"))
    encoder = ConformerConfig(**SHRINK["speech.asr.config.conformer_tiny"])  # type: ignore[arg-type]
    out = tmp_path_factory.mktemp("ctc")
    save_pretrained(CTCModel(CTCModelConfig(vocab_size=len(vocab), encoder=encoder)), vocab, out)
    return out


def _shrink(node: DictConfig, prefix: str = "model") -> list[str]:
    """Overrides that shrink every builder of SHRINK that a model config calls, at any depth."""
    out = []
    for key, sub in node.items():
        if isinstance(sub, DictConfig):
            out += [f"++{prefix}.{key}.{k}={v}" for k, v in SHRINK.get(sub.get("_target_", ""), {}).items()]
            out += _shrink(sub, f"{prefix}.{key}")
    return out


def _tiny_data(cfg: DictConfig, request: pytest.FixtureRequest) -> list[str]:
    """Tiny data of the config's own kind (single process, CPU, CSV logger); the helpers' model keys left out."""
    from datamodules.image_text import ImageTextDataModule
    from datamodules.music import MusicDataModule
    from datamodules.source_trace import SourceTraceDataModule
    from datamodules.speech import SpeechDataModule
    from datamodules.text import ParallelTextDataModule
    from datamodules.tts import TTSDataModule
    from datamodules.tts_duration import DurationDataModule
    from tests.vision_data import tiny_image_text_overrides

    cls = hydra.utils.get_class(cfg.data._target_)
    if issubclass(cls, ParallelTextDataModule):
        tiny = tiny_text_overrides(request.getfixturevalue("tiny_text_corpus"))
    elif issubclass(cls, SpeechDataModule):
        tiny = tiny_overrides(request.getfixturevalue("tiny_corpus"))
    elif issubclass(cls, TTSDataModule):
        from tests.tts_data import tiny_tts_overrides

        tiny = tiny_tts_overrides(request.getfixturevalue("tiny_tts_corpus"))
    elif issubclass(cls, DurationDataModule):  # the same aligned rows, without audio (so no mel statistics)
        from tests.tts_data import tiny_tts_overrides

        tiny = [o for o in tiny_tts_overrides(request.getfixturevalue("tiny_tts_corpus"))
                if not o.startswith("data.stats_utterances=")]
    elif issubclass(cls, ImageTextDataModule):  # FLAME reads a tiny LLM's cache, the CLIP baseline captions
        cache = ([f"data.text_embeddings={request.getfixturevalue('tiny_flame_cache')}"]
                 if cfg.data.text_embeddings else [])
        tiny = [*tiny_image_text_overrides(request.getfixturevalue("tiny_vision_corpus")), *cache]
    elif issubclass(cls, SourceTraceDataModule):
        from tests.source_trace_data import tiny_trace_overrides

        tiny = tiny_trace_overrides(request.getfixturevalue("tiny_trace_corpus"))
    elif cfg.data._target_ == "datamodules.sign.SignDataModule":
        from tests.slt_data import tiny_sign_overrides

        tiny = tiny_sign_overrides(*request.getfixturevalue("tiny_sign_corpus"))
    elif issubclass(cls, MusicDataModule):  # the audio stage starts from a tiny symbolic model
        from tests.clamp_data import tiny_overrides as tiny_music_overrides

        init = request.getfixturevalue("tiny_clamp_dir") if cfg.model.stage == "audio" else None
        tiny = tiny_music_overrides(request.getfixturevalue("tiny_music_corpus"), init)
    else:
        pytest.fail(f"{cfg.data._target_}: no tiny data for this datamodule yet; add it to _tiny_data")
    return [o for o in tiny if not o.startswith("+model.")]


def _tiny(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    """experiment=<name> on tiny data with tiny networks, and a tiny init model where its recipe starts from one."""
    base = compose_cfg("train", [f"experiment={name}"], tmp_path)
    init = INIT.get(base.model._target_)
    init_override = [f"model.init_encoder={request.getfixturevalue(init)}"] if init else []
    return [f"experiment={name}", *_tiny_data(base, request), *_shrink(base.model), *init_override]


def test_every_experiment_shows_its_command_and_sets_its_monitor() -> None:
    for name in EXPERIMENTS:
        path = CONFIGS / "experiment" / f"{name}.yaml"
        text = path.read_text()
        assert text.startswith("# @package _global_"), name
        assert f"scripts/train.py experiment={name}" in text, name
        raw = OmegaConf.load(path)
        assert raw.get("monitor") and raw.get("monitor_mode") in ("min", "max"), f"{name}: set monitor, monitor_mode"
        assert "override /trainer: default" not in text, f"{name}: the default trainer needs no override"
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if line.strip().startswith("precision:"):
                assert lines[i - 1].strip().startswith("#"), f"{name}: say why it overrides trainer.precision"


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_fast_dev_run(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    cfg = compose_cfg("train", [*_tiny(name, request, tmp_path), "debug=fdr"], tmp_path)
    ckpt, stop = cfg.callbacks.model_checkpoint, cfg.callbacks.early_stopping
    if stop is None:  # trains to its time budget and exports the last checkpoint (experiment=text_encoder_real)
        assert ckpt.monitor in (None, cfg.monitor)
    else:
        assert ckpt.monitor == stop.monitor == cfg.monitor
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    module = hydra.utils.instantiate(cfg.model, _convert_="all", **datamodule.model_kwargs())
    assert isinstance(datamodule, L.LightningDataModule) and isinstance(module, L.LightningModule)
    # Keeps this test fast: a new builder needs its tiny size in SHRINK.
    assert sum(p.numel() for p in module.parameters()) < 1e6, name
    if "init_encoder" in cfg.model:
        assert module.hparams["init_encoder"] == cfg.model.init_encoder

    metrics = load_script("train").train(cfg)
    assert metrics["train/loss"] > 0
    # One validation batch ran and logged the experiment's monitored metric, which train.py returns.
    assert metrics["objective"] == metrics[cfg.monitor]


def test_multirun_sweep_returns_the_monitored_metric(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    cmd = [sys.executable, str(ROOT / "scripts" / "train.py"), "-m", *_tiny("asr_lowres", request, tmp_path),
           "debug=fdr", "model.lr=1e-3,2e-3", f"hydra.sweep.dir={sweep}",
           "+hydra.callbacks.record._target_=tests.sweep_record.RecordReturn"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    jobs = [sweep / "0", sweep / "1"]
    assert sorted(OmegaConf.load(job / "config.yaml").model.lr for job in jobs) == [1e-3, 2e-3]
    for job in jobs:
        returned = json.loads((job / "return.json").read_text())
        assert returned["status"] == "COMPLETED" and isinstance(returned["value"], float)
        saved = json.loads((job / "metrics.json").read_text())["metrics"]
        assert returned["value"] == saved["objective"] == saved["val/cer"]


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
    cfg = compose_cfg("train", [*overrides, *_tiny_data(compose_cfg("train", overrides, tmp_path), request)],
                      tmp_path)
    dm = hydra.utils.instantiate(cfg.data)
    module = hydra.utils.instantiate(cfg.model, **dm.model_kwargs())
    assert sum(p.numel() for p in module.parameters()) > 1e5


@pytest.mark.parametrize(("preset", "key", "value"), [
    ("trainer=cpu", "trainer.accelerator", "cpu"),
    ("trainer=gpu", "trainer.accelerator", "gpu"),
    ("trainer=ddp", "trainer.strategy", "ddp"),
    ("debug=fdr", "trainer.fast_dev_run", True),
    ("debug=overfit", "trainer.overfit_batches", 3),
])
def test_presets_compose(preset: str, key: str, value: object, tmp_path: Path) -> None:
    cfg = compose_cfg("train", ["experiment=asr_lowres", preset], tmp_path)
    assert OmegaConf.select(cfg, key) == value
    assert cfg.trainer._target_ == "lightning.pytorch.Trainer"


def test_precision_comes_from_the_trainer_group_unless_an_experiment_says_why(tmp_path: Path) -> None:
    from common.runner import auto_precision

    for name in EXPERIMENTS:
        pinned = "precision:" in (CONFIGS / "experiment" / f"{name}.yaml").read_text()
        precision = compose_cfg("train", [f"experiment={name}"], tmp_path).trainer.precision
        assert pinned or precision == auto_precision(), name


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


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_eval_config_takes_the_experiments_model_and_data(name: str, tmp_path: Path) -> None:
    train = compose_cfg("train", [f"experiment={name}"], tmp_path)
    ev = compose_cfg("eval", [f"experiment={name}", "ckpt_path=x.ckpt"], tmp_path)
    assert (ev.model._target_, ev.data._target_) == (train.model._target_, train.data._target_)
    assert OmegaConf.to_container(ev.trainer, resolve=True)["precision"] == train.trainer.precision


def test_make_corpus_config_composes(tmp_path: Path) -> None:
    cfg = compose_cfg("make_corpus", [], tmp_path)
    assert cfg.corpus._target_ == "datamodules.corpus.speech.SpeechCorpusConfig"


def test_transcribe_config_takes_model_as_a_path(tmp_path: Path) -> None:
    cfg = compose_cfg("transcribe", ["model=runs/x/model", "input=in", "output=o.jsonl"], tmp_path,
                      root=CONFIGS / "inference")
    assert cfg.model == "runs/x/model"
