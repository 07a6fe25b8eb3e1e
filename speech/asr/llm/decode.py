"""Autoregressive decoding: greedy and batched beam search with length normalisation."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from speech.asr.llm.model import LLMASR, KVCache
from speech.asr.llm.tokens import TokenSequence, is_continuation, pad_sequences

StepFn = Callable[[Tensor, Any], tuple[Tensor, Any]]
"""``(last tokens [N], state) -> (next-token log-probs [N, V], state)``."""
ReorderFn = Callable[[Any, Tensor], Any]
"""``(state, rows [N']) -> state`` keeping (and repeating) the given rows."""


def greedy_search(first_logp: Tensor, step: StepFn, state: Any, max_len: list[int], eos: int) -> list[list[int]]:
    """Argmax until ``<eos>`` or ``max_len`` tokens; the result excludes ``<eos>``."""
    out: list[list[int]] = [[] for _ in max_len]
    done = [m <= 0 for m in max_len]
    logp = first_logp
    for t in range(max(max_len, default=0)):
        best = logp.argmax(-1)  # [B]
        for b, v in enumerate(best.tolist()):
            if done[b]:
                continue
            if v == eos:
                done[b] = True
            else:
                out[b].append(v)
                done[b] = t + 1 >= max_len[b]
        if all(done):
            break
        logp, state = step(best, state)
    return out


def beam_search(
    first_logp: Tensor, step: StepFn, state: Any, reorder: ReorderFn, max_len: list[int], eos: int,
    beam: int = 4, alpha: float = 1.0,
) -> list[list[int]]:
    """Beam search; finished hypotheses rank by ``score / len**alpha`` (``len`` counts ``<eos>``).

    An utterance stops at ``max_len`` tokens, or once ``beam`` hypotheses have finished and no live one,
    normalised at its current length, beats the ``beam``-th best of them; at beam 1 this is exactly
    greedy search. The result excludes ``<eos>``.
    """
    b_n, v_n = first_logp.shape
    k_n = beam
    dev = first_logp.device
    state = reorder(state, torch.arange(b_n, device=dev).repeat_interleave(k_n))
    logp = first_logp.repeat_interleave(k_n, 0)  # [B*K, V]
    scores = torch.full((b_n, k_n), -math.inf, device=dev)
    scores[:, 0] = 0.0
    hyps: list[list[list[int]]] = [[[] for _ in range(k_n)] for _ in range(b_n)]
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(b_n)]
    done = [m <= 0 for m in max_len]
    for t in range(max(max_len, default=0)):
        cand = (scores.reshape(-1, 1) + logp.float()).view(b_n, k_n * v_n)
        top_s, top_i = cand.topk(min(2 * k_n, k_n * v_n), dim=1)
        src, nxt, new_scores = [], [], []
        for b in range(b_n):
            alive: list[tuple[float, int, int]] = []
            if not done[b]:
                for s, i in zip(top_s[b].tolist(), top_i[b].tolist()):
                    if s == -math.inf:
                        break
                    k, v = divmod(i, v_n)
                    seq = [*hyps[b][k], v]
                    if v == eos or t + 1 >= max_len[b]:
                        finished[b].append((s / len(seq) ** alpha, seq[:-1] if v == eos else seq))
                    else:
                        alive.append((s, k, v))
                        if len(alive) == k_n:
                            break
                done[b] = t + 1 >= max_len[b] or not alive or _settled(finished[b], alive, k_n, (t + 1) ** alpha)
            if done[b]:
                alive = []
            hyps[b] = [[*hyps[b][k], v] for _, k, v in alive] + [[] for _ in range(k_n - len(alive))]
            alive += [(-math.inf, 0, eos)] * (k_n - len(alive))
            src += [b * k_n + k for _, k, _ in alive]
            nxt += [v for _, _, v in alive]
            new_scores += [s for s, _, _ in alive]
        if all(done):
            break
        scores = torch.tensor(new_scores, device=dev).view(b_n, k_n)
        state = reorder(state, torch.tensor(src, device=dev))
        logp, state = step(torch.tensor(nxt, device=dev), state)
    return [max(f, key=lambda x: x[0])[1] if f else [] for f in finished]


def _settled(finished: list[tuple[float, list[int]]], alive: list[tuple[float, int, int]], beam: int,
             norm: float) -> bool:
    """Whether ``beam`` hypotheses have finished and the best live one can no longer overtake them."""
    if len(finished) < beam:
        return False
    kth = sorted((f[0] for f in finished), reverse=True)[beam - 1]
    return max(s for s, _, _ in alive) / norm <= kth


class LMStepper:
    """Prefills the LM on left-padded prompts, then extends every row by one token per step."""

    def __init__(self, model: LLMASR, allowed: Tensor):
        self.model = model
        self.blocked = ~allowed  # [V]

    def _logp(self, logits: Tensor) -> Tensor:
        return logits.masked_fill(self.blocked, -math.inf).log_softmax(-1)

    def prefill(self, x: Tensor, pos: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, tuple[KVCache, Tensor, Tensor]]:
        """Prompt embeddings [B, L, D] to the first log-probs [B, V], all prompt logits [B, L, V] and the state."""
        logits, cache = self.model(x, pos, mask)
        return self._logp(logits[:, -1]), logits, (cache, mask, pos[:, -1])

    def step(self, tokens: Tensor, state: tuple[KVCache, Tensor, Tensor]) -> tuple[Tensor, Any]:
        """Feed one token per row; the state holds the position of each row's last token."""
        cache, mask, last = state
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
        x = self.model.lm.embed(tokens[:, None])  # [N, 1, D]
        pos = last + ~is_continuation(tokens)  # as next_position in training: continuation bytes stay put
        logits, cache = self.model(x, pos[:, None], mask, cache)
        return self._logp(logits[:, -1]), (cache, mask, pos)

    @staticmethod
    def reorder(state: tuple[KVCache, Tensor, Tensor], rows: Tensor) -> tuple[KVCache, Tensor, Tensor]:
        cache, mask, last = state
        return [(k[rows], v[rows]) for k, v in cache], mask[rows], last[rows]


def decode_prompts(
    model: LLMASR, prompts: list[TokenSequence], audio: Tensor, max_len: list[int], beam: int = 1, alpha: float = 1.0
) -> tuple[list[str], Tensor]:
    """Transcribe prompts ending in ``<bos>``; also returns the prompts' logits [B, L, V] (left-padded)."""
    tok = model.tok
    batch = pad_sequences(prompts, tok.pad_id, left=True)
    dev = audio.device
    x = model.embed(batch["ids"].to(dev), batch["clip"].to(dev), batch["frame"].to(dev), audio)
    allowed = torch.zeros(len(tok), dtype=torch.bool, device=dev)
    allowed[:256] = True
    allowed[tok.eos_id] = True
    stepper = LMStepper(model, allowed)
    first, logits, state = stepper.prefill(x, batch["pos"].to(dev), batch["mask"].to(dev))
    if beam <= 1:
        ids = greedy_search(first, stepper.step, state, max_len, tok.eos_id)
    else:
        ids = beam_search(first, stepper.step, state, stepper.reorder, max_len, tok.eos_id, beam, alpha)
    return [" ".join(tok.decode(x).split()) for x in ids], logits


def max_tokens(seconds: Tensor | list[float], bytes_per_second: float) -> list[int]:
    """Longest transcript to generate for clips of ``seconds``: a byte rate plus a margin."""
    return [math.ceil(float(s) * bytes_per_second) + 8 for s in seconds]
