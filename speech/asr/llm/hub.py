"""LLM-ASR model directories: ``config.json`` (model_type ``asr_llm``) + ``model.safetensors``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, cast

import torch
from safetensors.torch import load_file
from torch import Tensor

from common import hub
from speech.asr.llm.config import DecoderLMConfig, LLMASRConfig
from speech.asr.llm.model import LLMASR
from speech.encoders.conformer import ConformerConfig
from text.char_vocab import CharVocab

MODEL_TYPE = "asr_llm"


def config_from_dict(d: dict[str, Any]) -> LLMASRConfig:
    return LLMASRConfig(
        langs=list(d.get("langs", [])),
        encoder=ConformerConfig(**d.get("encoder", {})),
        lm=DecoderLMConfig(**d.get("lm", {})),
        stack=int(d.get("stack", 4)),
        projector_mult=int(d.get("projector_mult", 2)),
        sample_rate=int(d.get("sample_rate", 16_000)),
        ctc_vocab=int(d.get("ctc_vocab", 0)),
    )


def refuse_byte_positions(state: dict[str, Tensor], model_dir: Path) -> dict[str, Tensor]:
    """Weights trained when text positions counted bytes can't be read with character positions."""
    if "ctc_label_bytes" in state:
        raise hub.ModelDirError(
            f"{model_dir}/model.safetensors: trained when text positions counted bytes (before 2026-12-03); "
            "positions now count characters, so retrain it with experiment=asr_llm")
    return state


@hub.register_model_type(MODEL_TYPE, state_from_file=refuse_byte_positions)
def build_llm_asr(config: dict[str, Any]) -> LLMASR:
    return LLMASR(config_from_dict(config))


def save_pretrained(model: LLMASR, out_dir: str | os.PathLike[str], **meta: Any) -> Path:
    """Write a self-contained model directory, each file atomically."""
    return hub.save_pretrained(model, out_dir, model_type=MODEL_TYPE, **meta)


def from_pretrained(model_dir: str | os.PathLike[str], device: str | torch.device = "cpu") -> LLMASR:
    """Load a directory written by ``save_pretrained``."""
    return cast(LLMASR, hub.load_pretrained(model_dir, device, expect=MODEL_TYPE).model)


def load_ctc_encoder(model: LLMASR, ctc_dir: str | os.PathLike[str]) -> None:
    """Copy the conformer weights of a CTC model directory into ``model.encoder`` (and its head into
    ``model.ctc_head`` when the model compresses frames)."""
    d = Path(ctc_dir)
    if not (d / "model.safetensors").exists():
        raise FileNotFoundError(f"{d}: no model.safetensors to initialise the encoder from")
    state = load_file(str(d / "model.safetensors"))
    enc = {k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}
    if not enc:
        raise ValueError(f"{d}/model.safetensors: no encoder.* weights")
    model.encoder.load_state_dict(enc)
    if model.ctc_head is not None:
        model.ctc_head.load_state_dict({k[len("head."):]: v for k, v in state.items() if k.startswith("head.")})
        tokens = CharVocab.load(d / "vocab.json").tokens
        if len(tokens) != model.ctc_head.out_features:
            raise ValueError(f"{d}/vocab.json: {len(tokens)} labels, the CTC head has {model.ctc_head.out_features}")


def ctc_encoder_config(ctc_dir: str | os.PathLike[str]) -> tuple[dict[str, Any], int]:
    """The ``encoder`` block of a CTC model directory's ``config.json`` and its vocabulary size."""
    path = Path(ctc_dir) / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing; init_encoder must be a CTC model directory")
    cfg = json.loads(path.read_text(encoding="utf-8"))
    if "encoder" not in cfg or "vocab_size" not in cfg:
        raise ValueError(f"{path}: no encoder settings or vocab_size")
    return dict(cfg["encoder"]), int(cfg["vocab_size"])
