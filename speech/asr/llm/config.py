"""LLM-ASR architectures: conformer encoder, frame-stacking projector, byte-level decoder LM."""

from __future__ import annotations

from dataclasses import dataclass, field

from speech.asr.config import conformer_tiny
from speech.encoders.conformer import ConformerConfig


@dataclass
class DecoderLMConfig:
    """A small causal transformer over bytes, specials and language tokens."""

    d_model: int = 256
    """Width of every block (and of the audio embeddings fed in)."""
    num_layers: int = 4
    """Number of transformer blocks."""
    num_heads: int = 4
    """Attention heads; ``d_model`` must divide evenly."""
    ff_mult: int = 4
    """Feed-forward hidden size as a multiple of ``d_model``."""
    dropout: float = 0.1
    """Dropout inside blocks."""


@dataclass
class LLMASRConfig:
    """A complete LLM-ASR model; saved as ``config.json`` next to the weights."""

    langs: list[str] = field(default_factory=list)
    """Languages with a learned token; any other language is written without one."""
    encoder: ConformerConfig = field(default_factory=conformer_tiny)
    """The audio encoder architecture (matches a CTC model's when initialised from one)."""
    lm: DecoderLMConfig = field(default_factory=DecoderLMConfig)
    """The decoder LM architecture."""
    stack: int = 4
    """Consecutive encoder frames concatenated into one LM input (time reduction of the projector)."""
    projector_mult: int = 2
    """Hidden width of the projector MLP as a multiple of the LM width."""
    sample_rate: int = 16_000
    """Input sample rate in Hz."""
    ctc_vocab: int = 0
    """Labels of the CTC head of the encoder's source model; 0 for none. With a head, encoder frames are
    compressed before the projector (``ctc_compress``): about one audio embedding per character."""


def decoder_lm_tiny(**overrides: object) -> DecoderLMConfig:
    """About 3.2M parameters: four 256-wide blocks, the 2-core CPU default."""
    return DecoderLMConfig(**{"d_model": 256, "num_layers": 4, "num_heads": 4, **overrides})  # type: ignore[arg-type]


def decoder_lm_small(**overrides: object) -> DecoderLMConfig:
    """About 19M parameters: eight 384-wide blocks, for GPUs."""
    return DecoderLMConfig(**{"d_model": 384, "num_layers": 8, "num_heads": 6, **overrides})  # type: ignore[arg-type]
