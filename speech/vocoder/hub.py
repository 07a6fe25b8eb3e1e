"""Vocoder directories (``config.json`` + ``model.safetensors``) and the one factory a synthesizer calls."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, cast

from torch import nn

from common import hub
from speech.vocoder.config import VocosConfig
from speech.vocoder.griffin_lim import GriffinLimVocoder
from speech.vocoder.model import Vocoder

MODEL_TYPE = "vocoder_vocos"
GRIFFIN_LIM = "griffin_lim"
"""The name ``make_vocoder`` takes for the training-free baseline."""


@hub.register_model_type(MODEL_TYPE)
def build_vocos(config: dict[str, Any]) -> Vocoder:
    return Vocoder(VocosConfig.from_dict(config))


def save_vocoder(net: Vocoder, out_dir: str | os.PathLike[str], **meta: Any) -> Path:
    """Write ``net`` as a model directory (each file atomically, ``config.json`` last)."""
    return hub.save_pretrained(net, out_dir, model_type=MODEL_TYPE, **meta)


def load_vocoder(model_dir: str | os.PathLike[str], device: str = "cpu") -> Vocoder:
    """A vocoder saved by ``save_vocoder`` (or exported by ``experiment=vocoder``), in eval mode."""
    return cast(Vocoder, hub.load_pretrained(model_dir, device, expect=MODEL_TYPE).model)


def make_vocoder(name_or_dir: str | os.PathLike[str], device: str = "cpu", **griffin_lim: Any) -> nn.Module:
    """``"griffin_lim"`` (keyword arguments go to ``GriffinLimVocoder``) or a vocoder directory.

    Either maps log-mel frames [B, T, n_mels] to a waveform [B, (T - 1) * hop].
    """
    if str(name_or_dir) == GRIFFIN_LIM:
        return GriffinLimVocoder(**griffin_lim).to(device)
    if griffin_lim:
        raise TypeError(f"{name_or_dir}: options {sorted(griffin_lim)} apply only to {GRIFFIN_LIM!r}")
    return load_vocoder(name_or_dir, device)
