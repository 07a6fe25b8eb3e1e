"""Speaker-verification trials from labelled embeddings: every pair of utterances, same speaker or not, by cosine.

EER and minDCF come from common.scoring. ``same_lang`` figures keep only pairs of one language: in a corpus where
each speaker speaks one language, those are the non-target trials that language cannot give away.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from common.scoring import eer, min_dcf


@dataclass
class Trials:
    """Scored pairs of utterances."""

    scores: Tensor
    """Cosine of the two embeddings [N]."""
    target: Tensor
    """True where both utterances are of one speaker [N]."""
    same_lang: Tensor
    """True where both utterances are in one language [N]."""


def _ids(names: Sequence[str]) -> Tensor:
    index: dict[str, int] = {}
    return torch.tensor([index.setdefault(n, len(index)) for n in names])


def all_pairs(emb: Tensor, speakers: Sequence[str], langs: Sequence[str] | None = None,
              max_trials: int | None = None, seed: int = 0) -> Trials:
    """Every pair i < j of the embeddings [U, D]; past ``max_trials``, all target pairs and a fixed random share of
    the others (target pairs are the rare ones)."""
    if emb.shape[0] != len(speakers) or (langs is not None and len(langs) != len(speakers)):
        raise ValueError(f"{emb.shape[0]} embeddings, {len(speakers)} speakers and "
                         f"{len(langs) if langs is not None else '-'} languages: they must match")
    spk, lang = _ids(speakers), _ids(langs or ["und"] * len(speakers))
    i, j = torch.triu_indices(len(speakers), len(speakers), offset=1)
    target = spk[i] == spk[j]
    if max_trials is not None and len(i) > max_trials:
        others = (~target).nonzero().squeeze(1)
        keep_n = max(0, max_trials - int(target.sum()))
        pick = others[torch.randperm(len(others), generator=torch.Generator().manual_seed(seed))[:keep_n]]
        keep = torch.cat([target.nonzero().squeeze(1), pick]).sort().values
        i, j, target = i[keep], j[keep], target[keep]
    e = F.normalize(emb.float(), dim=-1)
    return Trials((e[i] * e[j]).sum(-1), target, lang[i] == lang[j])


def verification_metrics(trials: Trials) -> dict[str, float]:
    """EER and minDCF (p_target 0.01) over all trials and over same-language trials; a subset without both target
    and non-target trials is left out (so the dict may be empty)."""
    out: dict[str, float] = {}
    for suffix, keep in (("", torch.ones_like(trials.target)), ("_same_lang", trials.same_lang)):
        y = trials.target[keep]
        if y.any() and not y.all():
            s = trials.scores[keep]
            out[f"eer{suffix}"] = eer(s, y)[0]
            out[f"min_dcf{suffix}"] = min_dcf(s, y)[0]
            out[f"trials{suffix}"] = float(len(y))
    return out
