"""One evaluation path: ``scripts/eval.py`` hands a checkpoint to the ``evaluate`` of the config's LightningModule."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import hydra
import lightning as L
from omegaconf import DictConfig

from common import runner


@runtime_checkable
class Evaluable(Protocol):
    """A LightningModule class that evaluates a checkpoint of its own (a classmethod: it loads the checkpoint)."""

    @classmethod
    def evaluate(cls, cfg: DictConfig, ckpt: str) -> dict[str, float]:
        """Metrics of ``ckpt`` on ``cfg.data``'s test split; any files go to ``cfg.paths.output_dir``."""
        ...


def evaluate(cfg: DictConfig, ckpt: str) -> dict[str, float]:
    """Evaluate ``ckpt`` with the ``evaluate`` of ``cfg.model._target_``; a module without one is a clear error."""
    module_cls: Any = hydra.utils.get_class(cfg.model._target_)
    if not isinstance(module_cls, Evaluable):
        raise SystemExit(f"model._target_={cfg.model._target_}: {module_cls.__name__} has no evaluate(cfg, ckpt) "
                         "(common.evaluation.Evaluable), so scripts/eval.py cannot evaluate it")
    return module_cls.evaluate(cfg, ckpt)


def trainer_test(cfg: DictConfig, model: L.LightningModule, datamodule: L.LightningDataModule,
                 ckpt: str) -> dict[str, float]:
    """``trainer.test`` under ``cfg.trainer`` and its loggers; writes ``metrics.json`` into the run folder."""
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, logger=runner.loggers(cfg), callbacks=[])
    results = trainer.test(model, datamodule=datamodule)
    metrics = {k: float(v) for k, v in (results[0] if results else {}).items()}
    if trainer.is_global_zero:
        runner.write_json(Path(cfg.paths.output_dir) / "metrics.json", {"checkpoint": ckpt, "metrics": metrics})
    runner.report_bad_inputs(cfg.data.get("bad_audio_log"))
    return metrics
