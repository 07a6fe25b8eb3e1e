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
    """Piece ids ``[B, T]`` (and their mask) to ``[B, dim]`` sentence vectors: mean of hashed n-gram rows + MLP.

    ``blocks`` (first id, rows) are row blocks of their own after the ``buckets`` shared rows, one per language added
    later by distillation (``add_block``): the ids from a block's first id on (up to the next block's) hash into it
    alone, so training a block leaves every other language's vectors exactly as they were.
    """

    def __init__(self, vocab_size: int, buckets: int, dim: int, orders: Sequence[int], width: int,
                 cjk_orders: Sequence[int] = (), blocks: Sequence[Sequence[int]] = ()):
        super().__init__()
        self.buckets, self.orders, self.width, self.cjk_orders = buckets, tuple(orders), width, tuple(cjk_orders)
        self.blocks: tuple[tuple[int, int], ...] = tuple((int(i), int(n)) for i, n in blocks)
        self.register_buffer("table", torch.full((vocab_size, width), -1, dtype=torch.long))
        # Where each id's pair feature hashes to, (first row, rows): derived from the blocks, so not saved.
        self.register_buffer("pair_rows", self._pair_rows(vocab_size), persistent=False)
        self.rows = nn.Embedding(buckets, dim, sparse=True)
        nn.init.normal_(self.rows.weight, std=0.1)
        # Dense: a block is small, and its language trains alone with a dense optimizer (text.distill).
        self.extra = nn.Embedding(sum(n for _, n in self.blocks), dim) if self.blocks else None
        if self.extra is not None:
            nn.init.zeros_(self.extra.weight)
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim))
        self.table: Tensor
        self.pair_rows: Tensor

    def _pair_rows(self, vocab_size: int) -> Tensor:
        out = torch.tensor([[0, self.buckets]], dtype=torch.long).repeat(vocab_size, 1)
        first_row = self.buckets
        for first_id, rows in self.blocks:  # in id order: a later block's ids overwrite from its first id on
            out[first_id:] = torch.tensor([first_row, rows])
            first_row += rows
        return out

    def resize(self, vocab_size: int) -> None:
        """Make room for ids up to ``vocab_size - 1``; new ids have no rows until ``set_pieces``."""
        if vocab_size > self.table.shape[0]:
            grown = torch.full((vocab_size, self.width), -1, dtype=torch.long, device=self.table.device)
            grown[: self.table.shape[0]] = self.table
            self.table = grown
            self.pair_rows = self._pair_rows(vocab_size).to(self.table.device)

    def add_block(self, first_id: int, rows: int) -> tuple[int, int]:
        """A zero-initialised block of ``rows`` rows for ids ``first_id ..``; returns (first row, rows) of it."""
        if self.blocks and first_id <= self.blocks[-1][0]:
            raise ValueError(f"a new block's ids must follow the last block's (from {self.blocks[-1][0]}), "
                             f"got {first_id}")
        first_row = self.buckets + sum(n for _, n in self.blocks)
        old = self.rows.weight.new_zeros(0, self.rows.embedding_dim) if self.extra is None else self.extra.weight
        self.extra = nn.Embedding(old.shape[0] + rows, old.shape[1]).to(old.device)
        with torch.no_grad():
            self.extra.weight.zero_()
            self.extra.weight[: old.shape[0]] = old.detach()
        self.blocks = (*self.blocks, (first_id, rows))
        self.pair_rows = self._pair_rows(self.table.shape[0]).to(self.table.device)
        return first_row, rows

    def set_pieces(self, pieces: Sequence[str], start: int = 0, block: tuple[int, int] | None = None) -> None:
        """Fill the feature rows of ids ``start ..`` from their piece strings (growing the table if needed); with a
        ``block`` (from ``add_block``) their n-grams hash into that block instead of the shared rows (and their pairs
        do too, as ids of the block)."""
        self.resize(start + len(pieces))
        first, size = block or (0, self.buckets)
        for i, piece in enumerate(pieces):
            feats = [first + f for f in piece_features(piece, self.orders, size, self.width, self.cjk_orders)]
            self.table[start + i] = -1
            self.table[start + i, : len(feats)] = torch.tensor(feats)

    def _vectors(self, rows: Tensor) -> Tensor:
        """Vectors of row indices ``[N]`` over the shared rows and the blocks."""
        if self.extra is None:
            return self.rows(rows)
        shared = rows < self.buckets
        out = torch.zeros(len(rows), self.rows.embedding_dim, dtype=self.rows.weight.dtype, device=rows.device)
        out = out.index_put((shared.nonzero()[:, 0],), self.rows(rows[shared]))
        return out.index_put(((~shared).nonzero()[:, 0],), self.extra(rows[~shared] - self.buckets))

    def forward(self, ids: Tensor, mask: Tensor) -> Tensor:
        b = ids.shape[0]
        ids = ids.clamp(0, self.table.shape[0] - 1)
        feats = self.table[ids]  # [B, T, W]
        # The pair of each piece with the next one: order and compounds that single pieces miss.
        nxt = torch.cat([ids[:, 1:], ids[:, :1]], dim=1)
        first, size = self.pair_rows[ids].unbind(-1)  # [B, T] each
        pairs = first + (ids * _PAIR_SALT + nxt) % size  # [B, T]
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
            x = torch.sparse.mm(mean, self._vectors(uniq))  # [B, dim]: only the touched rows get gradients
            return x + self.mlp(x)

    def dense_parameters(self) -> list[nn.Parameter]:
        """Everything but the hashed rows (whose gradient is sparse)."""
        return list(self.mlp.parameters())
