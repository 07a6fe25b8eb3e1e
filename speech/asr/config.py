"""ASR architectures: a CTC model is an encoder (log-mel conformer or wav2vec2) plus a character head."""

from __future__ import annotations

from dataclasses import dataclass, field

from speech.encoders.conformer import ConformerConfig
from speech.encoders.wav2vec2 import Wav2Vec2Config, mms_1b, wav2vec2, wav2vec2_base, wav2vec2_tiny, xlsr_300m

ENCODER_CONFIGS: dict[str, type] = {"conformer": ConformerConfig, "wav2vec2": Wav2Vec2Config}
"""Encoder kind (``CTCModelConfig.encoder_type``) -> its architecture dataclass."""

__all__ = [
    "ENCODER_CONFIGS", "CTCModelConfig", "SpecAugmentConfig", "conformer", "conformer_base", "conformer_small",
    "conformer_tiny", "mms_1b", "wav2vec2", "wav2vec2_base", "wav2vec2_tiny", "xlsr_300m",
]


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
    tempo_prob: float = 0.0
    """Chance that a training batch's log-mel frames are resampled in time to another speaking rate (one rate a
    batch; conformer only)."""
    tempo: tuple[float, float] = (0.6, 1.8)
    """Range of those rates (> 1 is faster), drawn log-uniformly."""


@dataclass
class CTCModelConfig:
    """A complete CTC recogniser; saved as ``config.json`` next to the weights."""

    vocab_size: int
    """Output classes, blank and UNK included."""
    encoder: ConformerConfig | Wav2Vec2Config = field(default_factory=ConformerConfig)
    """The encoder architecture; its class must match ``encoder_type``."""
    specaug: SpecAugmentConfig = field(default_factory=SpecAugmentConfig)
    """Training-time masking (wav2vec2: time masks only, filled with the learned mask embedding)."""
    sample_rate: int = 16_000
    """Rate in Hz the network runs at; the suite's 16 kHz audio is resampled to it first (imported 8 kHz models)."""
    encoder_type: str = "conformer"
    """Encoder kind: "conformer" (log-mel front-end) or "wav2vec2" (raw waveform)."""
    decode_hop_ms: float | None = None
    """Log-mel hop of a conformer outside training (None: the training hop, 10 ms). A finer hop reads speech as if
    slower, giving character CTC more frames; ``scripts/tune_decode_hop.py`` picks it on dev."""

    def __post_init__(self) -> None:
        if self.encoder_type not in ENCODER_CONFIGS:
            raise ValueError(f"encoder_type must be one of {sorted(ENCODER_CONFIGS)}, got {self.encoder_type!r}")
        if isinstance(self.encoder, dict):
            self.encoder = ENCODER_CONFIGS[self.encoder_type](**self.encoder)
        if not isinstance(self.encoder, ENCODER_CONFIGS[self.encoder_type]):
            raise TypeError(f"encoder_type {self.encoder_type!r} needs a {ENCODER_CONFIGS[self.encoder_type].__name__},"
                            f" got {type(self.encoder).__name__}")
        if isinstance(self.specaug, dict):
            self.specaug = SpecAugmentConfig(**self.specaug)
        if self.decode_hop_ms is not None and self.encoder_type != "conformer":
            raise ValueError(f"decode_hop_ms is for log-mel (conformer) models, not {self.encoder_type}")


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
