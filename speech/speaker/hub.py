"""Speaker encoder directories: ``config.json`` (model_type "speaker_ecapa", its EcapaConfig), ``model.safetensors``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, cast

import torch

from common import hub
from speech.speaker.config import EcapaConfig
from speech.speaker.model import MODEL_TYPE, SpeakerEncoder


@hub.register_model_type(MODEL_TYPE)
def build(config: dict[str, Any]) -> SpeakerEncoder:
    """An untrained encoder of the directory's architecture."""
    return SpeakerEncoder(EcapaConfig.from_dict(config))


def save_pretrained(net: SpeakerEncoder, out_dir: str | os.PathLike[str], **meta: Any) -> Path:
    """Write ``net`` (``meta``: extra config keys, such as the training speakers' count) for ``load_encoder``."""
    return hub.save_pretrained(net, out_dir, model_type=MODEL_TYPE, **meta)


def load_encoder(model_dir: str | os.PathLike[str], device: str | torch.device = "cpu") -> SpeakerEncoder:
    """The encoder in eval mode; a directory of another model type is a clear error naming it."""
    return cast(SpeakerEncoder, hub.load_pretrained(model_dir, device, expect=MODEL_TYPE).model)
