"""Source-tracer directories: ``config.json`` (model_type "source_tracer", its SourceTracerConfig),
``model.safetensors`` and ``calibration.safetensors`` (temperatures, open-set score and threshold, kNN bank)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from common import hub
from speech.source_trace.calibration import Calibration
from speech.source_trace.config import SourceTracerConfig
from speech.source_trace.model import MODEL_TYPE, SourceTracerNet

CALIBRATION = hub.SideFile("calibration.safetensors", lambda cal, path: cal.save(path), Calibration.load)


@hub.register_model_type(MODEL_TYPE, files={"calibration": CALIBRATION})
def build(config: dict[str, Any]) -> SourceTracerNet:
    """An untrained tracer of the directory's architecture and classes."""
    return SourceTracerNet(SourceTracerConfig.from_dict(config))


def save_pretrained(net: SourceTracerNet, calibration: Calibration, out_dir: str | os.PathLike[str],
                    **meta: Any) -> Path:
    """Write ``net`` and its dev calibration (``meta``: extra config keys, such as the protocol trained on)."""
    summary = {"score": calibration.score, "threshold": calibration.threshold,
               "source_temperature": calibration.source_temperature, **calibration.report}
    return hub.save_pretrained(net, out_dir, model_type=MODEL_TYPE, config=net.cfg.to_dict(),
                               files={"calibration": calibration}, calibration_summary=summary, **meta)


def load_tracer(model_dir: str | os.PathLike[str],
                device: str | torch.device = "cpu") -> tuple[SourceTracerNet, Calibration, dict[str, Any]]:
    """The network (eval mode), its calibration and config; another model type is a clear error naming the dir."""
    loaded = hub.load_pretrained(model_dir, device, expect=MODEL_TYPE)
    net = loaded.model
    assert isinstance(net, SourceTracerNet)
    return net, loaded.files["calibration"], loaded.config
