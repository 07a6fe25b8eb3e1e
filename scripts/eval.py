"""Evaluate a checkpoint on a test manifest: python scripts/eval.py ckpt_path=<run>/checkpoints/last.ckpt

Prints per-language CER/WER; the model's vocabulary comes from the checkpoint. With ``eval_task: text`` (set by
experiment=text_encoder) it evaluates a sentence encoder instead: a language x language xsim table on
data.test_manifest, plus xsim.json and an xsim.png heatmap in the run folder. ckpt_path may then be an exported
model directory or a training checkpoint.
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


def evaluate_text(cfg: DictConfig, ckpt: str) -> dict[str, float]:
    """xsim bitext retrieval and cross-lingual search of a sentence encoder on the test split."""
    from text.xsim import evaluate_encoder, format_matrix

    out_dir = Path(cfg.paths.output_dir)
    model_dir = Path(ckpt)
    if not model_dir.is_dir():
        module_cls = hydra.utils.get_class(cfg.model._target_)
        model_dir = module_cls.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True).export(
            out_dir / "model"
        )
    report = evaluate_encoder(model_dir, cfg.data.test_manifest, out_dir, limit=cfg.get("eval_sentences", 1000))
    print(format_matrix(report["xsim_error"]))  # type: ignore[arg-type]
    metrics = {k: float(v) for k, v in report.items() if k.startswith("mean_")}  # type: ignore[arg-type]
    print("\n".join(f"{k}: {v:.4f}" for k, v in metrics.items()))
    log.info("wrote %s and %s", out_dir / "xsim.json", out_dir / "xsim.png")
    return metrics


def evaluate(cfg: DictConfig) -> dict[str, float]:
    ckpt = runner.resolve_ckpt(cfg.ckpt_path, cfg.paths.output_dir)
    if ckpt is None:
        raise SystemExit("ckpt_path is required")
    runner.setup_threads(cfg.get("threads"))
    L.seed_everything(cfg.seed, workers=True)
    if cfg.get("eval_task", "asr") == "text":
        return evaluate_text(cfg, ckpt)
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
