"""Shared test helpers: compose the real configs, load the entry scripts, crash on cue, speech-like audio."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import lightning as L
import numpy as np
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from speech.audio import SAMPLE_RATE

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"


def load_script(name: str) -> ModuleType:
    """Import ``scripts/<name>.py`` as a module."""
    spec = importlib.util.spec_from_file_location(f"scripts_{name}", ROOT / "scripts" / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def compose_cfg(config_name: str, overrides: list[str], output_dir: Path, root: Path = CONFIGS) -> DictConfig:
    """Compose a real config and pin its run folder (no Hydra runtime needed)."""
    from common.runner import register_resolvers

    register_resolvers()
    with initialize_config_dir(str(root), version_base="1.3"):
        cfg = compose(config_name, overrides=overrides)
    if "paths" in cfg:
        with open_dict(cfg):
            cfg.paths.output_dir = str(output_dir)
    return cfg


def tiny_overrides(corpus: Path) -> list[str]:
    """A tiny model on a tiny corpus, single process, no workers."""
    return [
        f"data.train_manifest={corpus}/train.jsonl",
        f"data.val_manifest={corpus}/dev.jsonl",
        f"data.test_manifest={corpus}/test.jsonl",
        "data.num_workers=0",
        "trainer.accelerator=cpu",
        "trainer.precision=32-true",
        "+model.encoder.d_model=32",
        "+model.encoder.num_layers=1",
        "+model.encoder.num_heads=2",
        "+model.encoder.conv_kernel=5",
        "logger=csv",
        "callbacks.progress_bar=null",
        "trainer.enable_progress_bar=false",
    ]


def tiny_text_overrides(corpus: Path) -> list[str]:
    """A tiny sentence encoder on a tiny parallel corpus (tests/text_data.py writes one)."""
    p = corpus / "parallel"
    return [
        f"data.train_manifest={p}/train.jsonl", f"data.val_manifest={p}/dev.jsonl",
        f"data.test_manifest={p}/test.jsonl", f"data.mono_dir={corpus}/mono",
        "data.vocab_size=300", "data.batch_size=16",
        "+model.encoder.d_model=32", "+model.encoder.num_heads=2", "+model.encoder.ffn_dim=64",
        "+model.encoder.embed_dim=16", "logger=csv", "callbacks.progress_bar=null",
        "trainer.enable_progress_bar=false", "trainer.accelerator=cpu",
        "trainer.precision=32-true",  # the tests compare training-time figures with fp32 evaluation of the export
    ]


class CrashAt(L.Callback):
    """Raise after a given optimiser step, as a killed job would stop."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step >= self.step:
            raise RuntimeError(f"simulated interruption at step {trainer.global_step}")


class StopAt(L.Callback):
    """Stands in for an interrupted run: stops after ``step`` optimiser steps (no crash, the run just ends)."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step >= self.step:
            trainer.should_stop = True


def speechlike(seconds: float, seed: int = 0, pauses: bool = False) -> np.ndarray:
    """A gliding tone with amplitude modulation and noise; with ``pauses``, 0.5 s of silence every ~3 s."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    wave = 0.3 * np.sin(2 * np.pi * (200 + 100 * np.sin(0.7 * t)) * t) * (0.6 + 0.4 * np.sin(3 * t))
    wave += 0.05 * rng.standard_normal(len(t))
    if pauses:
        wave[(t % 3.1) > 2.6] = 0.0
    return wave.astype(np.float32)
