"""Evaluate a checkpoint on a test manifest: python scripts/eval.py ckpt_path=<run>/checkpoints/last.ckpt

Prints per-language CER/WER; the model's vocabulary comes from the checkpoint.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
import lightning as L
from omegaconf import DictConfig

from common import runner

runner.register_resolvers()
log = logging.getLogger("eval")


def evaluate(cfg: DictConfig) -> dict[str, float]:
    ckpt = runner.resolve_ckpt(cfg.ckpt_path, cfg.paths.output_dir)
    if ckpt is None:
        raise SystemExit("ckpt_path is required")
    runner.setup_threads(cfg.get("threads"))
    L.seed_everything(cfg.seed, workers=True)
    module_cls = hydra.utils.get_class(cfg.model._target_)
    model = module_cls.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True)
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    datamodule.set_vocab(model.vocab)
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, logger=runner.loggers(cfg), callbacks=[])
    results = trainer.test(model, datamodule=datamodule)
    metrics = {k: float(v) for k, v in (results[0] if results else {}).items()}
    if trainer.is_global_zero:
        runner.write_json(Path(cfg.paths.output_dir) / "metrics.json", {"checkpoint": ckpt, "metrics": metrics})
    runner.report_bad_inputs(cfg.data.get("bad_audio_log"))
    return metrics


@hydra.main(version_base="1.3", config_path="../configs", config_name="eval")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
