"""Model directories: ``config.json`` + ``model.safetensors`` + ``vocab.json``."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save

from common.io import atomic_open
from speech.asr.config import CTCModelConfig, SpecAugmentConfig
from speech.asr.model import CTCModel
from speech.encoders.conformer import ConformerConfig
from text.char_vocab import CharVocab

MODEL_TYPE = "ctc_conformer"


def config_from_dict(d: dict[str, Any]) -> CTCModelConfig:
    return CTCModelConfig(
        vocab_size=int(d["vocab_size"]),
        encoder=ConformerConfig(**d.get("encoder", {})),
        specaug=SpecAugmentConfig(**d.get("specaug", {})),
        sample_rate=int(d.get("sample_rate", 16_000)),
    )


def save_pretrained(model: CTCModel, vocab: CharVocab, out_dir: str | os.PathLike[str], **meta: Any) -> Path:
    """Write a self-contained model directory, each file atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = {"model_type": MODEL_TYPE, **asdict(model.cfg), **meta}
    with atomic_open(out / "config.json", "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=2, ensure_ascii=False)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_open(out / "model.safetensors", "wb") as f:
        f.write(save(state, metadata={"format": "pt"}))
    vocab.save(out / "vocab.json")
    return out


def from_pretrained(
    model_dir: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[CTCModel, CharVocab]:
    """Load a directory written by ``save_pretrained``."""
    d = Path(model_dir)
    for name in ("config.json", "model.safetensors", "vocab.json"):
        if not (d / name).exists():
            raise FileNotFoundError(f"{d}: not a model directory ({name} is missing)")
    cfg_dict = json.loads((d / "config.json").read_text(encoding="utf-8"))
    if cfg_dict.get("model_type") != MODEL_TYPE:
        raise ValueError(f"{d}/config.json: model_type {cfg_dict.get('model_type')!r} is not {MODEL_TYPE!r}")
    model = CTCModel(config_from_dict(cfg_dict))
    model.load_state_dict(load_file(str(d / "model.safetensors"), device=str(device)))
    return model.to(device).eval(), CharVocab.load(d / "vocab.json")


def from_checkpoint(
    ckpt_path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[CTCModel, CharVocab]:
    """Load the network of a Lightning checkpoint written by ``ASRModule`` (weights only)."""
    ckpt = torch.load(str(ckpt_path), map_location=device, weights_only=True)
    hp = ckpt["hyper_parameters"]
    vocab = CharVocab(hp["vocab"][3:], hp.get("lang_chars"))
    model = CTCModel(config_from_dict({"vocab_size": len(vocab), "encoder": hp["encoder"], "specaug": hp["specaug"]}))
    prefix = "net."
    model.load_state_dict({k[len(prefix):]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)})
    return model.to(device).eval(), vocab


def load_model(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> tuple[CTCModel, CharVocab]:
    """A model directory or a ``.ckpt`` file."""
    p = Path(path)
    if p.is_dir():
        return from_pretrained(p, device)
    if p.suffix == ".ckpt" and p.exists():
        return from_checkpoint(p, device)
    raise FileNotFoundError(f"{p}: neither a model directory nor a .ckpt checkpoint")
