"""Acoustic model directories through the suite's hub: ``config.json`` + ``model.safetensors`` + ``units.json``.

Public API::

    save_pretrained(model, vocab, out_dir, **meta) -> Path    # model_type "tts_flow"; mel stats live in the config
    model, vocab = from_pretrained(model_dir, device="cpu")   # FlowTTS in eval mode and its UnitVocab

``config.json`` holds the ``FlowTTSConfig`` (with ``mel_mean``/``mel_std``) and the ``MelSpec`` the frames were
computed with (key ``mel``), so a vocoder can check that it fits.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from common import hub
from speech.tts.config import flow_tts_config
from speech.tts.model import FlowTTS
from speech.tts.vocab import UnitVocab
from speech.vocoder.mel import MelSpec

MODEL_TYPE = "tts_flow"

VOCAB = hub.SideFile("units.json", lambda vocab, path: vocab.save(path), UnitVocab.load)
"""The units the model can say."""


@hub.register_model_type(MODEL_TYPE, files={"vocab": VOCAB})
def build_flow_tts(d: dict[str, Any]) -> nn.Module:
    """A ``FlowTTS`` with random weights from a ``config.json`` dict."""
    return FlowTTS(flow_tts_config(d))


def save_pretrained(model: FlowTTS, vocab: UnitVocab, out_dir: str | os.PathLike[str], **meta: Any) -> Path:
    """Write a self-contained model directory, each file atomically."""
    if len(vocab) != model.cfg.vocab_size:
        raise ValueError(f"the vocabulary has {len(vocab)} ids but the model embeds {model.cfg.vocab_size}")
    return hub.save_pretrained(model, out_dir, model_type=MODEL_TYPE, files={"vocab": vocab},
                               **{"mel": MelSpec().to_dict(), **meta})


def from_pretrained(model_dir: str | os.PathLike[str],
                    device: str | torch.device = "cpu") -> tuple[FlowTTS, UnitVocab]:
    """Load a ``tts_flow`` directory: the model in eval mode and its unit vocabulary."""
    loaded = hub.load_pretrained(model_dir, device, expect=MODEL_TYPE)
    model, vocab = loaded.model, loaded.files["vocab"]
    if not isinstance(model, FlowTTS) or len(vocab) != model.cfg.vocab_size:
        raise hub.ModelDirError(f"{model_dir}: {VOCAB.name} has {len(vocab)} ids but the model embeds "
                                f"{getattr(getattr(model, 'cfg', None), 'vocab_size', '?')}")
    return model, vocab
