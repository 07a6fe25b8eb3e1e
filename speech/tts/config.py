"""Sizes of the flow-matching acoustic model (Voicebox, Le et al., 2023): ``FlowTTSConfig`` and named sizes.

Public API::

    flow_tts(**kw) -> FlowTTSConfig          # the dataclass defaults with overrides
    flow_tts_tiny(**kw)                      # ~3M parameters, trains on 2 CPU cores
    flow_tts_small(**kw)                     # ~16M parameters, for a GPU
    flow_tts_config(d: dict) -> FlowTTSConfig  # from a config.json dict (unknown keys ignored)
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from speech.vocoder.mel import MelSpec


@dataclass
class FlowTTSConfig:
    """A transformer over log-mel frames that predicts the flow-matching vector field."""

    dim: int = 256
    """Transformer width."""
    depth: int = 8
    """Transformer blocks (even: the first half feeds U-Net skips into the second half)."""
    heads: int = 4
    """Attention heads (``dim`` divisible by ``heads``; head width even for rotary positions)."""
    ff_mult: int = 4
    """Feed-forward width as a multiple of ``dim``."""
    n_mels: int = MelSpec().n_mels
    """Mel bands of a frame (``speech.vocoder.mel.MelSpec``)."""
    vocab_size: int = 2
    """Unit ids including pad (0) and unk (1); set from the ``UnitVocab``."""
    unit_dim: int = 64
    """Width of the unit embedding concatenated to every frame."""
    conv_pos_kernel: int = 31
    """Kernel of the convolutional position embedding over frames (odd)."""
    conv_pos_groups: int = 16
    """Groups of that convolution (divides ``dim``)."""
    dropout: float = 0.1
    """Dropout in attention outputs and feed-forward blocks."""
    cond_drop_prob: float = 0.2
    """Share of training samples with audio context and units both dropped (classifier-free guidance)."""
    mask_frac: tuple[float, float] = (0.7, 1.0)
    """Range of the share of an utterance masked as one contiguous span in training (Voicebox)."""
    sigma_min: float = 1e-5
    """Noise left at t=1 on the optimal-transport path."""
    mel_mean: float = -4.7
    """Global mean of the log-mel frames, subtracted before the flow (set from the training data; the default was
    measured on 100 utterances of the generated corpus)."""
    mel_std: float = 2.6
    """Global standard deviation of the log-mel frames, so the flow works on ~unit-variance data."""
    max_frames: int = 2048
    """Longest sequence (prompt plus generated frames) the model is meant for; inference refuses longer ones."""

    def __post_init__(self) -> None:
        self.mask_frac = (float(self.mask_frac[0]), float(self.mask_frac[1]))
        if self.depth % 2:
            raise ValueError(f"depth must be even for the U-Net skips, got {self.depth}")
        if self.dim % self.heads or (self.dim // self.heads) % 2:
            raise ValueError(f"dim {self.dim} must split into {self.heads} heads of even width")
        if self.dim % self.conv_pos_groups or self.conv_pos_kernel % 2 == 0:
            raise ValueError("conv_pos_groups must divide dim and conv_pos_kernel must be odd")
        lo, hi = self.mask_frac
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"mask_frac must satisfy 0 < lo <= hi <= 1, got {self.mask_frac}")


def flow_tts_config(d: dict[str, Any]) -> FlowTTSConfig:
    """The ``FlowTTSConfig`` inside a ``config.json`` dict (other keys: model_type, files, langs ... ignored)."""
    names = {f.name for f in fields(FlowTTSConfig)}
    kw: dict[str, Any] = {k: (tuple(v) if k == "mask_frac" else v) for k, v in d.items() if k in names}
    return FlowTTSConfig(**kw)


def flow_tts(**overrides: Any) -> FlowTTSConfig:
    """Any size: the dataclass defaults with ``overrides``."""
    return FlowTTSConfig(**overrides)


def flow_tts_tiny(**overrides: Any) -> FlowTTSConfig:
    """About 3.1M parameters: dim 192, 6 blocks; trains on 2 CPU cores within the family's budget."""
    return flow_tts(**{"dim": 192, "depth": 6, "heads": 3, "ff_mult": 4, "unit_dim": 64, **overrides})


def flow_tts_small(**overrides: Any) -> FlowTTSConfig:
    """About 16M parameters: dim 384, 8 blocks, for a GPU."""
    return flow_tts(**{"dim": 384, "depth": 8, "heads": 6, "ff_mult": 4, "unit_dim": 128, **overrides})
