"""ASR architectures: a CTC model is a conformer encoder plus a character head."""

from __future__ import annotations

from dataclasses import dataclass, field

from speech.encoders.conformer import ConformerConfig


@dataclass
class SpecAugmentConfig:
    """Masking applied to log-mels during training."""

    freq_masks: int = 2
    """Number of frequency masks."""
    freq_width: int = 15
    """Largest frequency mask, in mel channels."""
    time_masks: int = 4
    """Number of time masks."""
    time_width: float = 0.05
    """Largest time mask as a fraction of the utterance."""


@dataclass
class CTCModelConfig:
    """A complete CTC recogniser; saved as ``config.json`` next to the weights."""

    vocab_size: int
    """Output classes, blank and UNK included."""
    encoder: ConformerConfig = field(default_factory=ConformerConfig)
    """The encoder architecture."""
    specaug: SpecAugmentConfig = field(default_factory=SpecAugmentConfig)
    """Training-time masking."""
    sample_rate: int = 16_000
    """Input sample rate in Hz."""


def conformer(**overrides: object) -> ConformerConfig:
    """A conformer encoder configuration with explicit overrides."""
    return ConformerConfig(**overrides)  # type: ignore[arg-type]


def conformer_tiny(**overrides: object) -> ConformerConfig:
    """About 2.5M parameters: the 2-core CPU default."""
    return conformer(**{"d_model": 144, "num_layers": 6, "num_heads": 4, "conv_kernel": 15, **overrides})


def conformer_small(**overrides: object) -> ConformerConfig:
    """About 10M parameters."""
    return conformer(**{"d_model": 256, "num_layers": 8, "num_heads": 4, "conv_kernel": 31, **overrides})


def conformer_base(**overrides: object) -> ConformerConfig:
    """About 30M parameters, for GPUs."""
    return conformer(**{"d_model": 384, "num_layers": 12, "num_heads": 6, "conv_kernel": 31, **overrides})
