"""Evaluate a checkpoint: python scripts/eval.py [experiment=<name>] ckpt_path=<run>/checkpoints/last.ckpt

The config's LightningModule evaluates it (``evaluate`` of common.evaluation.Evaluable): CTC ASR and LLM-ASR print
per-language CER/WER on data.test_manifest (vocabulary from the checkpoint) and write metrics.json; a sentence
encoder (experiment=text_encoder; ckpt_path may also be an exported model directory) prints a language x language
xsim table and writes xsim.json and an xsim.png heatmap into the run folder.
"""

from __future__ import annotations

import hydra
import lightning as L
from omegaconf import DictConfig

from common import evaluation, runner

runner.register_resolvers()


def evaluate(cfg: DictConfig) -> dict[str, float]:
    ckpt = runner.resolve_ckpt(cfg.ckpt_path, cfg.paths.output_dir)
    if ckpt is None:
        raise SystemExit("ckpt_path is required")
    runner.setup_threads(cfg.get("threads"))
    L.seed_everything(cfg.seed, workers=True)
    return evaluation.evaluate(cfg, ckpt)


@hydra.main(version_base="1.3", config_path="../configs", config_name="eval")
def main(cfg: DictConfig) -> None:
    evaluate(runner.require(cfg, "eval"))


if __name__ == "__main__":
    main()
