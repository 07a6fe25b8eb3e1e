"""CTC helpers shared by training, inference and extension: alphabet masks, greedy decoding, padding."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from text.char_vocab import CharVocab


def restrict_to_langs(logp: Tensor, vocab: CharVocab, langs: Sequence[str | None] | None) -> Tensor:
    """Keep each utterance to its language's alphabet when the language is known."""
    if not langs or not any(vocab.allowed_ids(lang) for lang in langs):
        return logp
    keep = torch.ones(logp.shape[0], logp.shape[-1], dtype=torch.bool, device=logp.device)
    for i, lang in enumerate(langs):
        allowed = vocab.allowed_ids(lang)
        if allowed is not None:
            keep[i] = False
            keep[i, allowed] = True
    return logp.masked_fill(~keep[:, None, :], float("-inf"))


def greedy_decode(logp: Tensor, lens: Tensor, vocab: CharVocab, langs: Sequence[str | None] | None = None) -> list[str]:
    """Best path: argmax per frame, merge repeats, drop blanks; within ``langs``' alphabets when given."""
    best = restrict_to_langs(logp, vocab, langs).argmax(-1).cpu()  # [B, T]
    out = []
    for ids, n in zip(best, lens.cpu().tolist()):
        seq = ids[:n]
        keep = torch.ones_like(seq, dtype=torch.bool)
        keep[1:] = seq[1:] != seq[:-1]
        out.append(vocab.decode(seq[keep & (seq != vocab.blank_id)].tolist()))
    return [" ".join(t.split()) for t in out]


