"""ASR model directories through the suite's hub: ``config.json`` + ``model.safetensors`` + ``vocab.json``.

The CTC model types register here (``ctc_conformer``, ``ctc_wav2vec2``; the adapted model registers in
``speech.asr.adapters``); ``common.hub`` writes and reads the files.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from common import hub
from speech.asr.config import ENCODER_CONFIGS, CTCModelConfig, SpecAugmentConfig
from speech.asr.interop.vocab import TokenVocab
from speech.asr.model import CTCModel
from text.char_vocab import CharVocab

CTC_TYPES = ("ctc_conformer", "ctc_wav2vec2", "ctc_adapted")
"""The model types ``from_pretrained`` returns with a vocabulary (every CTC recogniser)."""


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
        decode_hop_ms=d.get("decode_hop_ms"),
    )


def load_vocab(path: str | os.PathLike[str]) -> CharVocab:
    """A ``vocab.json``: the suite's character vocabulary, or a foreign token table (``TokenVocab``)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if data.get("type") == TokenVocab.TYPE:
        return TokenVocab.load(path)
    return CharVocab.load(path)


VOCAB = hub.SideFile("vocab.json", lambda vocab, path: vocab.save(path), load_vocab)
"""The character (or imported token) vocabulary of a CTC model."""


@hub.register_model_type("ctc_conformer", files={"vocab": VOCAB})
@hub.register_model_type("ctc_wav2vec2", files={"vocab": VOCAB})
def build_ctc_model(d: dict[str, Any]) -> nn.Module:
    """A ``CTCModel`` with random weights from a ``config.json`` dict."""
    return CTCModel(config_from_dict(d))


def save_pretrained(model: nn.Module, vocab: CharVocab, out_dir: str | os.PathLike[str], **meta: Any) -> Path:
    """Write a self-contained model directory, each file atomically."""
    return hub.save_pretrained(model, out_dir, files={"vocab": vocab}, **meta)


def from_pretrained(model_dir: str | os.PathLike[str], device: str | torch.device = "cpu") -> tuple[Any, CharVocab]:
    """Load a CTC model directory (any CTC ``model_type``) and its vocabulary."""
    import speech.asr.adapters  # noqa: F401  (registers ctc_adapted)

    loaded = hub.load_pretrained(model_dir, device, expect=CTC_TYPES)
    return loaded.model, loaded.files["vocab"]


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
    from speech.encoders.wav2vec2_hf import encoder_state_from_hf, load_hf_config, read_state

    d = Path(path)
    cfg_dict = json.loads((d / "config.json").read_text(encoding="utf-8")) if (d / "config.json").is_file() else {}
    if cfg_dict.get("model_type") in CTC_TYPES:
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


def load_model_weights(model: CTCModel, vocab: CharVocab, path: str | os.PathLike[str]) -> None:
    """Copy a suite model directory's whole network (encoder and head) into ``model``; vocabularies must agree."""
    load_encoder_weights(model, path)
    source, src_vocab = from_pretrained(path)
    if src_vocab.tokens != vocab.tokens:
        raise ValueError(f"{path}: its vocabulary ({len(src_vocab)} tokens) differs from the training data's "
                         f"({len(vocab)}); start from its encoder only with model.init_encoder")
    model.load_state_dict(source.state_dict())


def load_model(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> tuple[Any, CharVocab]:
    """A model directory or a ``.ckpt`` file."""
    p = Path(path)
    if p.is_dir():
        return from_pretrained(p, device)
    if p.suffix == ".ckpt" and p.exists():
        return from_checkpoint(p, device)
    raise FileNotFoundError(f"{p}: neither a model directory nor a .ckpt checkpoint")
