"""Model directories: ``config.json`` + ``model.safetensors`` + ``vocab.json``.

``config.json`` names its ``model_type``; ``MODEL_TYPES`` maps each type to the function that builds
the (untrained) network from that config, so a new model family registers itself with one line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save
from torch import nn

from common.io import atomic_open
from speech.asr.adapters import build_adapted
from speech.asr.config import ENCODER_CONFIGS, CTCModelConfig, SpecAugmentConfig
from speech.asr.interop.vocab import TokenVocab
from speech.asr.model import CTCModel
from text.char_vocab import CharVocab


def config_from_dict(d: dict[str, Any]) -> CTCModelConfig:
    """The ``CTCModelConfig`` stored in a ``config.json`` (encoder_type defaults to conformer)."""
    encoder_type = str(d.get("encoder_type", "conformer"))
    if encoder_type not in ENCODER_CONFIGS:
        raise ValueError(f"encoder_type must be one of {sorted(ENCODER_CONFIGS)}, got {encoder_type!r}")
    return CTCModelConfig(
        vocab_size=int(d["vocab_size"]),
        encoder=ENCODER_CONFIGS[encoder_type](**d.get("encoder", {})),
        specaug=SpecAugmentConfig(**d.get("specaug", {})),
        sample_rate=int(d.get("sample_rate", 16_000)),
        encoder_type=encoder_type,
    )


def build_ctc_model(d: dict[str, Any]) -> nn.Module:
    """A ``CTCModel`` with random weights from a ``config.json`` dict."""
    return CTCModel(config_from_dict(d))


MODEL_TYPES: dict[str, Callable[[dict[str, Any]], nn.Module]] = {
    "ctc_conformer": build_ctc_model,
    "ctc_wav2vec2": build_ctc_model,
    "ctc_adapted": build_adapted,
}
"""config.json ``model_type`` -> builder of the network from the config dict."""


def load_vocab(path: str | os.PathLike[str]) -> CharVocab:
    """A ``vocab.json``: the suite's character vocabulary, or a foreign token table (``TokenVocab``)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if data.get("type") == TokenVocab.TYPE:
        return TokenVocab.load(path)
    return CharVocab.load(path)


def save_pretrained(model: CTCModel, vocab: CharVocab, out_dir: str | os.PathLike[str], **meta: Any) -> Path:
    """Write a self-contained model directory, each file atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = {"model_type": model.model_type, **asdict(model.cfg), **meta}
    with atomic_open(out / "config.json", "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=2, ensure_ascii=False)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_open(out / "model.safetensors", "wb") as f:
        f.write(save(state, metadata={"format": "pt"}))
    vocab.save(out / "vocab.json")
    return out


def from_pretrained(model_dir: str | os.PathLike[str], device: str | torch.device = "cpu") -> tuple[Any, CharVocab]:
    """Load a directory written by ``save_pretrained`` (any registered ``model_type``)."""
    d = Path(model_dir)
    for name in ("config.json", "model.safetensors", "vocab.json"):
        if not (d / name).exists():
            raise FileNotFoundError(f"{d}: not a model directory ({name} is missing)")
    cfg_dict = json.loads((d / "config.json").read_text(encoding="utf-8"))
    model_type = cfg_dict.get("model_type")
    if model_type not in MODEL_TYPES:
        raise ValueError(f"{d}/config.json: unknown model_type {model_type!r}; known: {sorted(MODEL_TYPES)}")
    model = MODEL_TYPES[model_type](cfg_dict)
    model.load_state_dict(load_file(str(d / "model.safetensors"), device=str(device)))
    return model.to(device).eval(), load_vocab(d / "vocab.json")


def from_checkpoint(
    ckpt_path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[CTCModel, CharVocab]:
    """Load the network of a Lightning checkpoint written by ``ASRModule`` (weights only)."""
    ckpt = torch.load(str(ckpt_path), map_location=device, weights_only=True)
    hp = ckpt["hyper_parameters"]
    vocab = CharVocab(hp["vocab"][3:], hp.get("lang_chars"))
    model = CTCModel(config_from_dict({
        "vocab_size": len(vocab), "encoder": hp["encoder"], "specaug": hp["specaug"],
        "encoder_type": hp.get("encoder_type", "conformer"),
    }))
    prefix = "net."
    model.load_state_dict({k[len(prefix):]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)})
    return model.to(device).eval(), vocab


def load_encoder_weights(model: CTCModel, path: str | os.PathLike[str]) -> None:
    """Copy the encoder weights of a suite model directory or a transformers wav2vec2 directory into ``model``.

    The architectures must agree (dropout aside); a mismatch names the differing fields.
    """
    from speech.asr.interop.hf import encoder_state_from_hf, load_hf_config, read_state

    d = Path(path)
    cfg_dict = json.loads((d / "config.json").read_text(encoding="utf-8")) if (d / "config.json").is_file() else {}
    if cfg_dict.get("model_type") in MODEL_TYPES:
        source, _ = from_pretrained(d)
        src_cfg, state = source.cfg.encoder, source.encoder.state_dict()
    elif cfg_dict.get("model_type") == "wav2vec2":
        src_cfg, state = load_hf_config(d), encoder_state_from_hf(read_state(d))
    else:
        raise ValueError(f"{d}: neither a suite model directory nor a transformers wav2vec2 directory")
    ours, theirs = asdict(model.cfg.encoder), asdict(src_cfg)
    if type(model.cfg.encoder) is not type(src_cfg):
        raise ValueError(f"{d}: its encoder is a {type(src_cfg).__name__}, the model's a "
                         f"{type(model.cfg.encoder).__name__}")
    diff = {k: (ours[k], theirs[k]) for k in ours if k not in ("dropout", "attention_dropout") and ours[k] != theirs[k]}
    if diff:
        raise ValueError(f"{d}: encoder shape differs from the configured one (ours, theirs): {diff}")
    model.encoder.load_state_dict(state)


def load_model(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> tuple[Any, CharVocab]:
    """A model directory or a ``.ckpt`` file."""
    p = Path(path)
    if p.is_dir():
        return from_pretrained(p, device)
    if p.suffix == ".ckpt" and p.exists():
        return from_checkpoint(p, device)
    raise FileNotFoundError(f"{p}: neither a model directory nor a .ckpt checkpoint")
