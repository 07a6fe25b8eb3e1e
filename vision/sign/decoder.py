"""A small transformer text decoder conditioned on a sentence embedding (as a memory prefix) and a target-language
token, with greedy and beam search.

Sequences are the tokenizer's ``[<lang>] pieces </s>``: the language token is the first input, so one decoder
writes any language it was trained on, whatever made the embedding (text, in the auto-encoding stage, or poses).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from common.layers import Dropout
from text.tokenizer import EOS_ID, PAD_ID
from vision.sign.config import DecoderConfig

StepFn = Callable[[Tensor], Tensor]
"""Prefixes ``[N, L]`` -> log-probabilities of the next token ``[N, V]``."""


class TextDecoder(nn.Module):
    """Pre-norm transformer decoder (Vaswani et al., 2017) cross-attending to ``prefix_len`` vectors projected from
    one sentence embedding, as SONAR's decoder reads its fixed-size bottleneck (Duquenne et al., 2023)."""

    def __init__(self, cfg: DecoderConfig, embed_dim: int):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.memory_proj = nn.Linear(embed_dim, cfg.prefix_len * d)
        self.memory_pos = nn.Parameter(torch.zeros(cfg.prefix_len, d))
        self.tok_emb = nn.Embedding(cfg.vocab_size, d, padding_idx=PAD_ID)
        self.pos_emb = nn.Embedding(cfg.max_length, d)
        self.drop = Dropout(cfg.dropout)
        layer = nn.TransformerDecoderLayer(d, cfg.num_heads, cfg.ffn_dim, cfg.dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.layers = nn.TransformerDecoder(layer, cfg.num_layers)
        self.norm = nn.LayerNorm(d)
        nn.init.normal_(self.tok_emb.weight, std=0.02)
        nn.init.normal_(self.pos_emb.weight, std=0.02)

    def memory(self, emb: Tensor) -> Tensor:
        """Cross-attention memory ``[B, prefix_len, d]`` of sentence embeddings ``[B, E]``."""
        return self.memory_proj(emb).view(emb.shape[0], self.cfg.prefix_len, -1) + self.memory_pos

    def logits(self, ids: Tensor, memory: Tensor, pad_mask: Tensor | None = None, last: bool = False) -> Tensor:
        """Next-token logits ``[B, L, V]`` of inputs ``ids [B, L]`` (causal) given ``memory [B, P, d]``; ``last``:
        only the last position's, ``[B, 1, V]`` (the output layer costs more than the rest of a search step)."""
        ids = ids[:, : self.cfg.max_length]
        pos = torch.arange(ids.shape[1], device=ids.device)
        h = self.drop(self.tok_emb(ids) + self.pos_emb(pos))  # [B, L, d]
        # Boolean like the padding mask (mixing a float and a bool mask is deprecated).
        causal = torch.ones(ids.shape[1], ids.shape[1], dtype=torch.bool, device=ids.device).triu(1)
        pad = None if pad_mask is None else ~pad_mask[:, : ids.shape[1]]
        h = self.layers(h, memory, tgt_mask=causal, tgt_is_causal=True, tgt_key_padding_mask=pad)
        # Output weights tied to the input embeddings (one matrix in the file: safetensors stores no shared tensors).
        if last:
            h = h[:, -1:]
        return F.linear(self.norm(h), self.tok_emb.weight)  # [B, L, V]

    def forward(self, emb: Tensor, ids: Tensor, mask: Tensor) -> Tensor:
        """Teacher-forced logits ``[B, L-1, V]`` predicting ``ids[:, 1:]`` from ``ids[:, :-1]`` (``[B, L]``)."""
        return self.logits(ids[:, :-1], self.memory(emb), mask[:, :-1])

    def step_fn(self, emb: Tensor) -> StepFn:
        """Next-token log-probabilities for prefixes of the rows of ``emb`` (rows repeated to the prefix count)."""
        memory = self.memory(emb)  # [B, P, d]

        def step(prefix: Tensor) -> Tensor:
            mem = memory.repeat_interleave(prefix.shape[0] // memory.shape[0], 0)
            logp = self.logits(prefix, mem, last=True)[:, -1].float().log_softmax(-1)  # [N, V]
            logp[:, PAD_ID] = float("-inf")
            return logp

        return step

    @torch.no_grad()
    def generate(self, emb: Tensor, lang_ids: Tensor, beam: int = 1, max_length: int | None = None,
                 length_penalty: float = 1.0) -> list[list[int]]:
        """Token ids (language token and ``</s>`` dropped) for each embedding ``[B, E]`` and language id ``[B]``."""
        n = min(max_length or self.cfg.max_length, self.cfg.max_length)
        if beam <= 1:
            return greedy_search(self.step_fn(emb), lang_ids, n)
        return beam_search(self.step_fn(emb), lang_ids, beam, n, length_penalty)


def _strip(seq: list[int]) -> list[int]:
    return seq[: seq.index(EOS_ID)] if EOS_ID in seq else seq


@torch.no_grad()
def greedy_search(step: StepFn, start: Tensor, max_length: int) -> list[list[int]]:
    """The most probable next token at each step, until ``</s>`` or ``max_length`` tokens (``start [B]``)."""
    seqs = start.view(-1, 1)  # [B, 1]
    done = torch.zeros(seqs.shape[0], dtype=torch.bool, device=seqs.device)
    for _ in range(max_length - 1):
        nxt = step(seqs).argmax(-1)  # [B]
        nxt = torch.where(done, torch.full_like(nxt, EOS_ID), nxt)
        seqs = torch.cat([seqs, nxt[:, None]], 1)
        done |= nxt == EOS_ID
        if done.all():
            break
    return [_strip(s[1:]) for s in seqs.tolist()]


@torch.no_grad()
def beam_search(step: StepFn, start: Tensor, beam: int, max_length: int,
                length_penalty: float = 1.0) -> list[list[int]]:
    """Beam search: the finished hypothesis with the best ``log p / length ** length_penalty`` per row.

    Each step expands every live beam, keeps the best ``beam`` continuations that don't end, and sets the ending
    ones aside; a row stops once it has ``beam`` finished hypotheses and no live beam can still beat them (with
    ``length_penalty <= 1`` a live beam's score only falls).
    """
    b, k = start.shape[0], beam
    seqs = start.repeat_interleave(k).view(-1, 1)  # [B*K, 1]
    scores = torch.full((b, k), float("-inf"), device=start.device)
    scores[:, 0] = 0.0  # the K copies of a row start as one beam
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(b)]

    def norm(score: float, length: int) -> float:
        return score / max(length, 1) ** length_penalty

    for t in range(1, max_length):
        logp = step(seqs)  # [B*K, V]
        v = logp.shape[-1]
        cand = (scores.view(-1, 1) + logp).view(b, k * v)  # [B, K*V]
        top, idx = cand.topk(min(2 * k, k * v), dim=1)  # [B, 2K]
        next_seqs, next_scores = [], torch.full((b, k), float("-inf"), device=start.device)
        rows = seqs.view(b, k, -1)
        for i in range(b):
            kept: list[Tensor] = []
            for s, j in zip(top[i].tolist(), idx[i].tolist()):
                if s == float("-inf"):
                    break
                src, tok = divmod(j, v)
                if tok == EOS_ID:
                    finished[i].append((norm(s, t), rows[i, src, 1:].tolist()))
                elif len(kept) < k:
                    next_scores[i, len(kept)] = s
                    kept.append(torch.cat([rows[i, src], rows.new_tensor([tok])]))
            while len(kept) < k:  # pad with a dead beam
                kept.append(torch.cat([rows[i, 0], rows.new_tensor([EOS_ID])]))
            next_seqs.extend(kept)
        seqs, scores = torch.stack(next_seqs), next_scores
        for i in range(b):
            if len(finished[i]) >= k and length_penalty <= 1:
                best_live = norm(float(scores[i].max()), t + 1) if length_penalty == 0 else float(scores[i].max()) / (
                    max_length ** length_penalty)
                if best_live <= max(f[0] for f in finished[i]):
                    scores[i] = float("-inf")  # nothing left that can win
        if all(len(f) >= k for f in finished) and bool(torch.isinf(scores).all()):
            break
    out = []
    for i in range(b):
        if finished[i]:
            out.append(max(finished[i], key=lambda f: f[0])[1])
        else:  # no hypothesis ended within max_length: the best live one
            out.append(seqs.view(b, k, -1)[i, int(scores[i].argmax()), 1:].tolist())
    return [_strip(s) for s in out]
