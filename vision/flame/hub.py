"""FLAME model directories: ``config.json`` (model_type "flame": the image tower, the projector, and the text side
they were trained against: LLM directory and fingerprint, facet prompts) + ``model.safetensors`` (tower and projector;
the frozen LLM stays in its own directory and is loaded only to embed text)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import torch

from common import hub
from vision.flame.config import FlameConfig
from vision.flame.model import MODEL_TYPE, FlameModel


@hub.register_model_type(MODEL_TYPE)
def build(config: dict[str, Any]) -> FlameModel:
    """An untrained FLAME image side of the directory's architecture."""
    return FlameModel(FlameConfig.from_dict(config))


def save_pretrained(model: FlameModel, out_dir: str | os.PathLike[str], **meta: Any) -> Path:
    """Write ``model`` for ``load_flame`` (``meta``: extra config keys)."""
    return hub.save_pretrained(model, out_dir, model_type=MODEL_TYPE, **meta)


def load_flame(model_dir: str | os.PathLike[str], device: str | torch.device = "cpu",
               llm_dir: str | os.PathLike[str] | None = None) -> FlameModel:
    """The model in eval mode; ``llm_dir`` points its text side at a moved LLM directory."""
    model = cast(FlameModel, hub.load_pretrained(model_dir, device, expect=MODEL_TYPE).model)
    if llm_dir:
        model.cfg = replace(model.cfg, llm_dir=str(llm_dir))
    return model
