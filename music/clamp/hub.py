"""CLaMP 3 model directories: ``config.json`` (model_type "clamp3": every tower's architecture, the training stage)
+ ``model.safetensors`` + ``tokenizer.model`` (the text tower's SentencePiece model)."""

from __future__ import annotations

from typing import Any

from common import hub
from music.clamp.config import ClampConfig
from music.clamp.model import MODEL_TYPE, ClampModel
from text.sentence_encoder import TOKENIZER


@hub.register_model_type(MODEL_TYPE, files={"tokenizer": TOKENIZER})
def build(config: dict[str, Any]) -> ClampModel:
    """An untrained CLaMP 3 of the directory's architecture."""
    return ClampModel(ClampConfig.from_dict(config))
