"""Decoder-only LM sizes for the frozen LLM of FLAME: transformers' Llama architecture (Touvron et al., 2023)."""

from __future__ import annotations

from dataclasses import dataclass

from transformers import LlamaConfig

from text.tokenizer import BOS_ID, EOS_ID, PAD_ID


@dataclass
class TextLMConfig:
    """A Llama decoder; the vocabulary size comes from the tokenizer."""

    d_model: int = 256
    """Hidden width."""
    num_layers: int = 4
    """Decoder blocks."""
    num_heads: int = 4
    """Attention heads."""
    ffn_dim: int = 688
    """SwiGLU inner width."""
    max_length: int = 128
    """Longest sequence in tokens (rotary positions reach further at inference)."""
    dropout: float = 0.0
    """Attention dropout."""

    def to_llama(self, vocab_size: int) -> LlamaConfig:
        """The transformers config, with the suite tokenizer's special ids and tied input/output embeddings."""
        return LlamaConfig(
            vocab_size=vocab_size, hidden_size=self.d_model, intermediate_size=self.ffn_dim,
            num_hidden_layers=self.num_layers, num_attention_heads=self.num_heads,
            num_key_value_heads=self.num_heads, max_position_embeddings=max(self.max_length, 512),
            attention_dropout=self.dropout, bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID,
            tie_word_embeddings=True,
        )


def text_lm(**overrides: object) -> TextLMConfig:
    """Any size: the dataclass defaults with ``overrides``."""
    return TextLMConfig(**overrides)  # type: ignore[arg-type]


def text_lm_tiny(**overrides: object) -> TextLMConfig:
    """About 3.5M parameters plus the embeddings: trains on 2 CPU cores in minutes."""
    return text_lm(**{"d_model": 256, "num_layers": 4, "num_heads": 4, "ffn_dim": 688, **overrides})
