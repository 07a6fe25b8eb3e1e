"""ONNX export: python scripts/export_onnx.py model=<suite CTC model dir|ckpt|transformers dir> output=model.onnx

Dynamic batch and time axes, opset ``speech.asr.export.OPSET``; with check=true (the default) onnxruntime's
log-probs are compared with the PyTorch model's on a padded batch of three lengths before the file is kept.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig

from common import runner
from speech.asr.export import OnnxCTCModel, export_onnx, load_ctc, max_logprob_diff
from speech.features import pad_waves

log = logging.getLogger("export_onnx")


@hydra.main(version_base="1.3", config_path="../configs/inference", config_name="export_onnx")
def main(cfg: DictConfig) -> None:
    runner.setup_threads(cfg.get("threads"))
    model, _ = load_ctc(cfg.model)
    rng = np.random.default_rng(0)
    wave, lens = pad_waves([0.1 * rng.standard_normal(n).astype(np.float32) for n in (4_800, 17_600, 32_000)])
    with torch.inference_mode():
        ref = model.eval()(wave, lens)  # before export: the TorchScript exporter can disturb the next call
    try:
        used = export_onnx(model, cfg.output, cfg.exporter)
    except TypeError as e:
        raise SystemExit(f"{cfg.model}: {e}") from e
    log.info("exported %s with the %s exporter -> %s", cfg.model, used, cfg.output)
    if cfg.check:
        diff = max_logprob_diff(ref, OnnxCTCModel(cfg.output, cfg.get("threads"))(wave, lens), relative=True)
        log.info("onnxruntime vs PyTorch on a padded batch of 0.3/1.1/2.0 s: max |log-prob diff| / max(1, |log p|) "
                 "%.2e", diff)
        if diff > cfg.tol:
            Path(cfg.output).unlink(missing_ok=True)
            log.error("%s: differs from the PyTorch model by %.2e > tol=%g; file removed", cfg.output, diff, cfg.tol)
            sys.exit(1)


if __name__ == "__main__":
    main()
