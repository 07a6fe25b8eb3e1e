"""A from-scratch multilingual sentence encoder: transformer, mean pooling, projection, unit-length output.

Saved as a local directory: ``config.json`` (``model_type: "sentence_encoder"``) + ``model.safetensors`` +
``tokenizer.model``; ``from_pretrained(dir)`` loads it back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from common import hub
from common.layers import Dropout
from text.ngram_bag import NgramBag
from text.tokenizer import PAD_ID, TOKENIZER_FILE, SentencePieceTokenizer

MODEL_TYPE = "sentence_encoder"


@dataclass
class SentenceEncoderConfig:
    """Architecture of the sentence encoder."""

    vocab_size: int = 8000
    """Number of tokenizer pieces (including byte-fallback pieces and language tokens)."""
    d_model: int = 256
    """Width of the transformer."""
    num_layers: int = 4
    """Number of transformer blocks."""
    num_heads: int = 4
    """Attention heads per block."""
    ffn_dim: int = 1024
    """Hidden width of each feed-forward block."""
    embed_dim: int = 256
    """Width of the output sentence embedding (after the projection)."""
    max_length: int = 128
    """Longest input in tokens (learned positions)."""
    dropout: float = 0.1
    """Dropout in attention, feed-forward and embeddings."""
    bag_buckets: int = 0
    """Rows of the hashed n-gram bag beside the transformer (``text.ngram_bag``); 0: no bag."""
    bag_orders: tuple[int, ...] = (3, 4, 5)
    """Character n-gram lengths of each piece in the bag."""
    bag_width: int = 24
    """Most bag rows per piece (the piece itself first, then its n-grams)."""
    bag_cjk_orders: tuple[int, ...] = ()
    """Extra n-gram lengths, before ``bag_orders``, for pieces with Han, kana or hangul signs (1: each sign)."""
    bag_blocks: tuple[tuple[int, int], ...] = ()
    """(first id, rows) of the bag's own row blocks for languages added by distillation (``grow_vocab``)."""

    def __post_init__(self) -> None:
        self.bag_orders, self.bag_cjk_orders = tuple(self.bag_orders), tuple(self.bag_cjk_orders)  # JSON, YAML: lists
        self.bag_blocks = tuple((int(i), int(n)) for i, n in self.bag_blocks)
        if self.num_layers == 0 and not self.bag_buckets:
            raise ValueError("a sentence encoder needs transformer layers, a bag (bag_buckets > 0), or both")


def sentence_encoder(**overrides: Any) -> SentenceEncoderConfig:
    """The base architecture with any field overridden."""
    return SentenceEncoderConfig(**overrides)


def sentence_encoder_tiny(**overrides: Any) -> SentenceEncoderConfig:
    """~1.5M parameters plus embeddings: fast enough to train on 2 CPU cores in minutes."""
    return sentence_encoder(**{"d_model": 128, "num_layers": 2, "num_heads": 4, "ffn_dim": 512, "embed_dim": 128,
                               **overrides})


def sentence_encoder_bag(**overrides: Any) -> SentenceEncoderConfig:
    """A 2^20-row n-gram bag alone (``num_layers=2`` adds the tiny transformer): learns real vocabulary on 2 CPU
    cores in minutes, ~1,000 steps of 512 pairs; the transformer's layers are built but unused at ``num_layers=0``."""
    return sentence_encoder_tiny(**{"bag_buckets": 1 << 20, "num_layers": 0, **overrides})


def sentence_encoder_small(**overrides: Any) -> SentenceEncoderConfig:
    """~6M parameters plus embeddings."""
    return sentence_encoder(**{"d_model": 256, "num_layers": 4, "num_heads": 4, "ffn_dim": 1024, "embed_dim": 256,
                               **overrides})


class SentenceEncoder(nn.Module):
    """Dual-encoder tower in the manner of LaBSE (Feng et al., 2022, "Language-agnostic BERT Sentence Embedding"):
    a pre-norm transformer over subwords, mean-pooled over real tokens, projected and L2-normalised.

    With ``bag_buckets`` a bag of hashed piece n-grams (``text.ngram_bag``) adds its vector before the normalisation;
    ``num_layers=0`` keeps the bag alone. Its feature table is filled from the tokenizer (``set_pieces``).
    """

    def __init__(self, cfg: SentenceEncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model, padding_idx=PAD_ID)
        self.pos_emb = nn.Embedding(cfg.max_length, cfg.d_model)
        self.drop = Dropout(cfg.dropout)
        layer = nn.TransformerEncoderLayer(
            cfg.d_model, cfg.num_heads, cfg.ffn_dim, cfg.dropout, activation="gelu", batch_first=True, norm_first=True
        )
        # Nested tensors would change results with the amount of padding; batching must not change an embedding.
        self.layers = nn.TransformerEncoder(layer, cfg.num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.embed_dim, bias=False)
        nn.init.normal_(self.tok_emb.weight, std=0.02)
        nn.init.normal_(self.pos_emb.weight, std=0.02)
        with torch.no_grad():
            self.tok_emb.weight[PAD_ID].zero_()
        self.bag = (NgramBag(cfg.vocab_size, cfg.bag_buckets, cfg.embed_dim, cfg.bag_orders, cfg.bag_width,
                             cfg.bag_cjk_orders, cfg.bag_blocks) if cfg.bag_buckets else None)

    def set_pieces(self, pieces: Sequence[str], start: int = 0) -> None:
        """Tell the bag which strings ids ``start ..`` stand for (a no-op without a bag)."""
        if self.bag is not None:
            self.bag.set_pieces(pieces, start)

    def pooled(self, input_ids: Tensor, mask: Tensor) -> Tensor:
        """Mean of the final hidden states over real tokens, ``[B, d_model]``."""
        ids = input_ids[:, : self.cfg.max_length]  # [B, T]
        mask = mask[:, : self.cfg.max_length].bool()  # [B, T]
        pos = torch.arange(ids.shape[1], device=ids.device)
        h = self.drop(self.tok_emb(ids) + self.pos_emb(pos))  # [B, T, D]
        h = self.norm(self.layers(h, src_key_padding_mask=~mask))  # [B, T, D]
        m = mask.unsqueeze(-1).to(h.dtype)  # [B, T, 1]
        return (h * m).sum(1) / m.sum(1).clamp(min=1.0)  # [B, D]

    def forward(self, input_ids: Tensor, mask: Tensor) -> Tensor:
        """Unit-length sentence embeddings ``[B, embed_dim]``."""
        parts = []
        if self.cfg.num_layers:
            parts.append(self.proj(self.pooled(input_ids, mask)).float())
        if self.bag is not None:
            parts.append(self.bag(input_ids, mask).float())
        return F.normalize(torch.stack(parts).sum(0), dim=-1)

    def grow_vocab(self, rows: Tensor, pieces: Sequence[str] | None = None, bag_rows: int = 0) -> None:
        """Append token-embedding rows ``[N, d_model]``: ids ``vocab_size`` to ``vocab_size + N - 1``.

        ``pieces`` (their strings) give the bag their n-grams; without them the new ids have no bag rows. With
        ``bag_rows`` the n-grams hash into a new block of that many bag rows of their own, not the shared ones.
        """
        first = self.tok_emb.num_embeddings
        if self.bag is not None:
            self.bag.resize(first + rows.shape[0])
            block = self.bag.add_block(first, bag_rows) if bag_rows else None
            self.bag.set_pieces(pieces or [], first, block)
            self.cfg.bag_blocks = self.bag.blocks
        old = self.tok_emb.weight.detach()
        self.tok_emb = nn.Embedding(old.shape[0] + rows.shape[0], old.shape[1], padding_idx=PAD_ID).to(old.device)
        with torch.no_grad():
            self.tok_emb.weight.copy_(torch.cat([old, rows.to(old)]))
        self.cfg.vocab_size = self.tok_emb.num_embeddings

    def rows_from(self, first_id: int) -> list[tuple[Tensor, int]]:
        """(weight, first row) of every table whose rows from that row on serve only ids ``first_id ..``: the
        token embeddings, and the bag's blocks added for those ids."""
        out = [(self.tok_emb.weight, first_id)]
        if self.bag is not None and self.bag.extra is not None:
            before = sum(n for start, n in self.bag.blocks if start < first_id)
            if before < self.bag.extra.num_embeddings:
                out.append((self.bag.extra.weight, before))
        return out


TOKENIZER = hub.SideFile(TOKENIZER_FILE, lambda tok, path: tok.save(path.parent), SentencePieceTokenizer)
"""The SentencePiece model (and any per-language extensions beside it)."""


@hub.register_model_type(MODEL_TYPE, files={"tokenizer": TOKENIZER})
def build_sentence_encoder(config: dict[str, Any]) -> SentenceEncoder:
    names = {f.name for f in fields(SentenceEncoderConfig)}
    return SentenceEncoder(SentenceEncoderConfig(**{k: v for k, v in config.items() if k in names}))


def save_pretrained(
    model: SentenceEncoder, tokenizer: SentencePieceTokenizer, out_dir: str | Path, **meta: Any
) -> Path:
    """Write ``config.json`` + ``model.safetensors`` + ``tokenizer.model``; ``meta`` (langs, ...) goes in the json."""
    return hub.save_pretrained(model, out_dir, model_type=MODEL_TYPE, files={"tokenizer": tokenizer}, **meta)


def read_config(model_dir: str | Path) -> dict[str, Any]:
    """``config.json`` of a model directory, with a clear error when it is missing or not this model type."""
    return hub.read_config(model_dir, expect=MODEL_TYPE)


def from_pretrained(model_dir: str | Path, device: str | torch.device = "cpu") -> tuple[SentenceEncoder,
                                                                                      SentencePieceTokenizer]:
    """Load a directory written by ``save_pretrained``; the model comes back in eval mode."""
    loaded = hub.load_pretrained(model_dir, device, expect=MODEL_TYPE)
    return cast(SentenceEncoder, loaded.model), loaded.files["tokenizer"]
