"""ECAPA-TDNN speaker encoder settings and named sizes (Desplanques et al., 2020, arXiv:2005.07143)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


@dataclass
class EcapaConfig:
    """An ECAPA-TDNN over 80-band log-mel frames (25 ms windows, 10 ms hop, speech.features.LogMel)."""

    n_mels: int = 80
    """Mel bands of the front-end."""
    sample_rate: int = 16_000
    """Waveform rate the front-end expects; ``SpeakerEncoder.embed`` resamples other rates to it."""
    channels: int = 512
    """Width C of the first conv and of the SE-Res2Net blocks."""
    kernel_size: int = 5
    """Kernel of the first conv."""
    block_kernel: int = 3
    """Kernel of the dilated Res2Net convs."""
    dilations: list[int] = field(default_factory=lambda: [2, 3, 4])
    """One SE-Res2Net block per entry, with this dilation."""
    scale: int = 8
    """Res2Net scale: channel groups of the hierarchical convs (``channels`` must divide by it)."""
    se_channels: int = 128
    """Bottleneck of the squeeze-excitation."""
    mfa_channels: int = 1536
    """Width of the 1x1 conv over the concatenated block outputs (multi-layer feature aggregation)."""
    attention_channels: int = 128
    """Bottleneck of the attentive statistics pooling."""
    global_context: bool = True
    """Whether the pooling's attention also sees the utterance's mean and standard deviation."""
    embed_dim: int = 192
    """Size of the speaker embedding."""

    def __post_init__(self) -> None:
        self.dilations = list(self.dilations)
        if self.channels % self.scale:
            raise ValueError(f"channels {self.channels} is not divisible by scale {self.scale}")
        if self.scale < 2 or not self.dilations or self.embed_dim < 1:
            raise ValueError("need scale >= 2, at least one block (dilations) and embed_dim >= 1")

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> EcapaConfig:
        """The architecture keys of a dict (a model directory's ``config.json`` holds others too)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in config.items() if k in names})


def ecapa(**overrides: Any) -> EcapaConfig:
    """ECAPA-TDNN with explicit overrides (defaults: the paper's C=512 model, 192-dim embeddings)."""
    return EcapaConfig(**overrides)


def ecapa_tiny(**overrides: Any) -> EcapaConfig:
    """About 0.5M parameters: trains on a 2-core CPU in 10-15 minutes on the generated corpus."""
    return ecapa(**{"channels": 128, "scale": 4, "se_channels": 64, "mfa_channels": 384, "attention_channels": 64,
                    "embed_dim": 128, **overrides})
