"""SONAR-SLT model directories: ``config.json`` (model_type "sign_translator": pose encoder, decoder, embedding
width, languages) + ``model.safetensors`` + ``tokenizer.model`` (the decoder's SentencePiece model)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, cast

import torch

from common import hub
from text.tokenizer import TOKENIZER_FILE, SentencePieceTokenizer
from vision.sign.config import SignTranslatorConfig
from vision.sign.model import MODEL_TYPE, SignTranslationModel

TOKENIZER = hub.SideFile(TOKENIZER_FILE, lambda tok, path: tok.save(path.parent), SentencePieceTokenizer)
"""The decoder's tokenizer, with a language token per language it writes."""


@hub.register_model_type(MODEL_TYPE, files={"tokenizer": TOKENIZER})
def build(config: dict[str, Any]) -> SignTranslationModel:
    """An untrained translator of the directory's architecture."""
    return SignTranslationModel(SignTranslatorConfig.from_dict(config))


def save_pretrained(model: SignTranslationModel, tokenizer: SentencePieceTokenizer, out_dir: str | os.PathLike[str],
                    **meta: Any) -> Path:
    """Write ``model`` and its tokenizer for ``load_translator`` (``meta``: extra config keys)."""
    missing = [lang for lang in model.cfg.langs if lang not in tokenizer.langs]
    if missing:
        raise ValueError(f"the tokenizer has no language token for {missing}")
    return hub.save_pretrained(model, out_dir, model_type=MODEL_TYPE, files={"tokenizer": tokenizer}, **meta)


def load_translator(model_dir: str | os.PathLike[str], device: str | torch.device = "cpu",
                    ) -> tuple[SignTranslationModel, SentencePieceTokenizer]:
    """The model (eval mode) and its tokenizer."""
    loaded = hub.load_pretrained(model_dir, device, expect=MODEL_TYPE)
    return cast(SignTranslationModel, loaded.model), loaded.files["tokenizer"]
