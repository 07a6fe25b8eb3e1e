"""Train any family from the Hydra config: python scripts/train.py experiment=asr_lowres [key=value ...]"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from common import runner
from common.io import atomic_open

runner.register_resolvers()
log = logging.getLogger("train")


def monitored(cfg: DictConfig, trainer: L.Trainer) -> float | None:
    """The run's score on ``cfg.monitor``: the checkpoint callback's best, else the last logged value."""
    key = cfg.get("monitor")
    if not key:
        return None
    ckpt = trainer.checkpoint_callback
    best = ckpt.best_model_score if isinstance(ckpt, ModelCheckpoint) and ckpt.monitor == key else None
    value = best if best is not None else trainer.callback_metrics.get(key)
    if value is None:
        log.warning("monitor=%s was never logged; logged: %s", key, ", ".join(sorted(trainer.callback_metrics)))
        return None
    return float(value)


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit, test the best checkpoint, export; returns the final metrics, with the monitored score as ``objective``."""
    out_dir = Path(cfg.paths.output_dir)
    ckpt = runner.resolve_ckpt(cfg.get("ckpt_path"), str(out_dir))
    if ckpt is None and any((out_dir / "checkpoints").glob("*.ckpt")):
        raise SystemExit(f"{out_dir} already holds checkpoints: resume with ckpt_path=last or pick a new run_name")
    runner.setup_threads(cfg.get("threads"))
    L.seed_everything(cfg.seed, workers=True)

    log.info("instantiating datamodule <%s>", cfg.data._target_)
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    log.info("instantiating model <%s>", cfg.model._target_)
    model = hydra.utils.instantiate(cfg.model, _convert_="all", **datamodule.model_kwargs())
    n_params = sum(p.numel() for p in model.parameters())
    log.info("model parameters: %.2fM", n_params / 1e6)

    trainer: L.Trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=runner.callbacks(cfg), logger=runner.loggers(cfg)
    )
    if trainer.is_global_zero:
        with atomic_open(out_dir / "config.yaml", "w", encoding="utf-8") as f:
            f.write(OmegaConf.to_yaml(cfg, resolve=True))

    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt, weights_only=True)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    score = monitored(cfg, trainer)
    if score is not None:
        metrics["objective"] = score

    ckpt_cb = trainer.checkpoint_callback
    best = ckpt_cb.best_model_path if isinstance(ckpt_cb, ModelCheckpoint) else ""
    if cfg.get("test") and datamodule.hparams.get("test_manifest") and not cfg.trainer.get("fast_dev_run"):
        results = trainer.test(model, datamodule=datamodule, ckpt_path=best or None, weights_only=True)
        metrics.update({k: float(v) for k, v in (results[0] if results else {}).items()})
    summary: dict[str, object] = {"best_checkpoint": best, "metrics": metrics}
    if cfg.get("export") and trainer.is_global_zero:
        if best:
            model = type(model).load_from_checkpoint(best, map_location="cpu", weights_only=True)
        summary["export_dir"] = str(model.export(out_dir / "model"))
        log.info("exported %s to %s", best or "the final weights", summary["export_dir"])
    if trainer.is_global_zero:
        runner.write_json(out_dir / "metrics.json", summary)
    runner.report_bad_inputs(cfg.data.get("bad_audio_log"))
    return metrics


@hydra.main(version_base="1.3", config_path="../configs", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Returns the monitored score, which sweeps (``-m``, the Optuna sweeper) read."""
    return train(cfg).get("objective")


if __name__ == "__main__":
    main()
