"""A bag of hashed n-grams over a sentence's pieces: the lexical branch of the sentence encoder.

Each piece stands for itself, its character n-grams (``<▁konto>`` gives ``<▁k``, ``▁ko``, ...) and its pair with the
next piece, all hashed into ``buckets`` rows of one table (fastText's subword trick; Bojanowski et al., 2017); the
sentence is the mean of its rows, refined by a residual MLP. Words that share spelling across languages (names,
numbers, cognates, placeholders) share rows, which is what a from-scratch encoder needs on domains it never saw, and
the branch learns in minutes on a CPU: a batch reads and updates only the rows it touches (``sparse`` gradients,
``common.optim.LazyAdamW``).

The features come from the piece ids alone (``table`` maps each id to its feature rows), so the tokenizer, the batches
and every caller of the encoder stay as they are.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import torch
from torch import Tensor, nn

_PAIR_SALT = 0x9E3779B1
"""Mixes a piece pair into one hash: ``(a * salt + b) mod buckets``."""


def _hash(feature: str, buckets: int) -> int:
    return zlib.crc32(feature.encode("utf-8")) % buckets


def is_ideographic(ch: str) -> bool:
    """Han, kana, hangul or a CJK compatibility character: scripts written without spaces, a word per 1-3 signs."""
    o = ord(ch)
    return (0x3040 <= o <= 0x30FF or 0x3400 <= o <= 0x9FFF or 0xAC00 <= o <= 0xD7AF or 0xF900 <= o <= 0xFAFF
            or 0x20000 <= o <= 0x3134F)


def piece_features(piece: str, orders: Sequence[int], buckets: int, width: int,
                   cjk_orders: Sequence[int] = ()) -> list[int]:
    """Rows of one piece: the piece itself, then its character n-grams (with ``<`` ``>`` marking its ends).

    A piece with ideographs also gets its ``cjk_orders`` n-grams first (1: each sign alone, no end marks): in
    Chinese a sign carries much of a word's meaning, and the 3-5-grams of a 1-2-sign piece are little but its ends.
    """
    rows = [_hash("p:" + piece, buckets)]
    text = "<" + piece.lower() + ">"
    extra = tuple(cjk_orders) if any(is_ideographic(c) for c in piece) else ()
    for n in (*extra, *orders):
        if n == 1:
            rows += [_hash(c, buckets) for c in piece if c != "\u2581"]
        else:
            rows += [_hash(text[i:i + n], buckets) for i in range(len(text) - n + 1)]
    return rows[:width]


class NgramBag(nn.Module):
    """Piece ids ``[B, T]`` (and their mask) to ``[B, dim]`` sentence vectors: mean of hashed n-gram rows + MLP."""

    def __init__(self, vocab_size: int, buckets: int, dim: int, orders: Sequence[int], width: int,
                 cjk_orders: Sequence[int] = ()):
        super().__init__()
        self.buckets, self.orders, self.width, self.cjk_orders = buckets, tuple(orders), width, tuple(cjk_orders)
        self.register_buffer("table", torch.full((vocab_size, width), -1, dtype=torch.long))
        self.rows = nn.Embedding(buckets, dim, sparse=True)
        nn.init.normal_(self.rows.weight, std=0.1)
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim))
        self.table: Tensor

    def resize(self, vocab_size: int) -> None:
        """Make room for ids up to ``vocab_size - 1``; new ids have no rows until ``set_pieces``."""
        if vocab_size > self.table.shape[0]:
            grown = torch.full((vocab_size, self.width), -1, dtype=torch.long, device=self.table.device)
            grown[: self.table.shape[0]] = self.table
            self.table = grown

    def set_pieces(self, pieces: Sequence[str], start: int = 0) -> None:
        """Fill the feature rows of ids ``start ..`` from their piece strings (growing the table if needed)."""
        self.resize(start + len(pieces))
        for i, piece in enumerate(pieces):
            feats = piece_features(piece, self.orders, self.buckets, self.width, self.cjk_orders)
            self.table[start + i] = -1
            self.table[start + i, : len(feats)] = torch.tensor(feats)

    def forward(self, ids: Tensor, mask: Tensor) -> Tensor:
        b = ids.shape[0]
        ids = ids.clamp(0, self.table.shape[0] - 1)
        feats = self.table[ids]  # [B, T, W]
        # The pair of each piece with the next one: order and compounds that single pieces miss.
        nxt = torch.cat([ids[:, 1:], ids[:, :1]], dim=1)
        pairs = (ids * _PAIR_SALT + nxt) % self.buckets  # [B, T]
        pair_ok = mask.bool() & torch.cat([mask[:, 1:].bool(), torch.zeros_like(mask[:, :1], dtype=torch.bool)], 1)
        feats = torch.cat([feats, torch.where(pair_ok, pairs, -1)[..., None]], dim=2)  # [B, T, W+1]
        keep = (feats >= 0) & mask.bool()[..., None]
        sentence = torch.arange(b, device=ids.device)[:, None, None].expand_as(feats)[keep]  # [N]
        flat = feats[keep]  # [N]
        uniq, col = torch.unique(flat, return_inverse=True)
        counts = torch.bincount(sentence, minlength=b).clamp_min(1).to(self.rows.weight.dtype)
        weights = (1.0 / counts)[sentence]
        mean = torch.sparse_coo_tensor(torch.stack([sentence, col]), weights, (b, len(uniq)), check_invariants=False)
        mean = mean.coalesce()
        # Sparse products have no reduced-precision kernels, and the branch is cheap: float32 throughout.
        with torch.autocast(device_type=ids.device.type, enabled=False):
            x = torch.sparse.mm(mean, self.rows(uniq))  # [B, dim]: only the touched rows get gradients
            return x + self.mlp(x)

    def dense_parameters(self) -> list[nn.Parameter]:
        """Everything but the hashed rows (whose gradient is sparse)."""
        return list(self.mlp.parameters())
