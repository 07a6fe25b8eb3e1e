"""Character and word error rates summed over a corpus (not averaged per utterance), corpus BLEU and chrF, and a
per-group breakdown of any metric. Detection and classification scores are in ``common.scoring``, retrieval metrics
in ``common.metrics_retrieval``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import sacrebleu
import torch
from lightning.pytorch.utilities import rank_zero_info
from rapidfuzz.distance import Levenshtein
from torchmetrics import Metric

if TYPE_CHECKING:
    import lightning as L


@dataclass
class ErrorCounts:
    """Edit operations and reference length for one metric."""

    errors: int = 0
    ref_len: int = 0

    @property
    def rate(self) -> float:
        return self.errors / max(self.ref_len, 1)


@dataclass
class ErrorRates:
    """Running CER and WER, overall and per language."""

    cer: dict[str, ErrorCounts] = field(default_factory=lambda: defaultdict(ErrorCounts))
    wer: dict[str, ErrorCounts] = field(default_factory=lambda: defaultdict(ErrorCounts))
    utterances: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def update(self, hyps: Sequence[str], refs: Sequence[str], langs: Sequence[str]) -> None:
        for hyp, ref, lang in zip(hyps, refs, langs, strict=True):
            ce, cn, we, wn = error_counts(hyp, ref)
            for key in (lang, "all"):
                self.cer[key].errors += ce
                self.cer[key].ref_len += cn
                self.wer[key].errors += we
                self.wer[key].ref_len += wn
                self.utterances[key] += 1

    def summary(self) -> dict[str, dict[str, float]]:
        """``{lang: {"cer": .., "wer": .., "n": ..}}`` with ``all`` last."""
        langs = sorted(k for k in self.cer if k != "all") + (["all"] if "all" in self.cer else [])
        return {
            k: {"cer": self.cer[k].rate, "wer": self.wer[k].rate, "n": float(self.utterances[k])}
            for k in langs
        }


def format_table(summary: dict[str, dict[str, float]], key: str = "lang") -> str:
    """A fixed-width table of per-language (or per-``key``) CER/WER in percent."""
    width = max([10, *(len(k) for k in summary)])
    lines = [f"{key:<{width}} {'n':>6} {'CER %':>7} {'WER %':>7}"]
    for lang, m in summary.items():
        lines.append(f"{lang:<{width}} {int(m['n']):>6} {100 * m['cer']:>7.2f} {100 * m['wer']:>7.2f}")
    return "\n".join(lines)


def error_counts(hyp: str, ref: str) -> tuple[int, int, int, int]:
    """(char errors, ref chars, word errors, ref words) of one hypothesis."""
    # rapidfuzz's Levenshtein (C++) rather than torchaudio's edit_distance (pure Python, ~1 s for a pair of
    # 1,500-character transcripts): the same unit-cost distance, over characters and over word lists.
    return (
        Levenshtein.distance(ref, hyp), len(ref),
        Levenshtein.distance(ref.split(), hyp.split()), len(ref.split()),
    )


class LanguageErrorRates(Metric):
    """CER/WER per language for a fixed language list, summed across DDP ranks."""

    full_state_update = False
    counts: torch.Tensor

    def __init__(self, langs: Sequence[str]):
        super().__init__()
        self.langs = list(langs)
        self.add_state("counts", default=torch.zeros(len(self.langs) + 1, 5, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, hyps: Sequence[str], refs: Sequence[str], langs: Sequence[str]) -> None:
        for hyp, ref, lang in zip(hyps, refs, langs, strict=True):
            row = self.langs.index(lang) if lang in self.langs else len(self.langs)
            self.counts[row] += torch.tensor([*error_counts(hyp, ref), 1], device=self.counts.device)

    def compute(self) -> dict[str, dict[str, float]]:
        c = self.counts.cpu()
        rows = {lang: c[i] for i, lang in enumerate([*self.langs, "other"]) if c[i, 4] > 0}
        rows["all"] = c.sum(0)
        return {
            k: {"cer": float(r[0] / r[1].clamp_min(1)), "wer": float(r[2] / r[3].clamp_min(1)), "n": float(r[4])}
            for k, r in rows.items()
        }


def log_error_rates(module: L.LightningModule, rates: LanguageErrorRates, stage: str) -> dict[str, dict[str, float]]:
    """End of a val/test epoch: log ``{stage}/cer`` (all) and ``{stage}_{lang}/cer|wer``, print the table, reset."""
    summary = rates.compute()
    rates.reset()
    for lang, m in summary.items():
        name = stage if lang == "all" else f"{stage}_{lang}"
        module.log(f"{name}/cer", m["cer"], prog_bar=lang == "all", rank_zero_only=True)
        module.log(f"{name}/wer", m["wer"], rank_zero_only=True)
    if stage == "test":
        rank_zero_info(f"\ntest:\n{format_table(summary)}")
    elif not module.trainer.sanity_checking:
        rank_zero_info(f"\nvalidation, epoch {module.current_epoch}:\n{format_table(summary)}")
    return summary


def _reference_streams(hyps: Sequence[str], refs: Sequence[str] | Sequence[Sequence[str]]) -> list[list[str]]:
    """sacrebleu's layout: a list of reference streams, each with one reference per hypothesis."""
    if not hyps:
        raise ValueError("no hypotheses")
    streams: list[list[Any]] = [list(refs)] if all(isinstance(r, str) for r in refs) else [list(r) for r in refs]
    for i, stream in enumerate(streams):
        if len(stream) != len(hyps) or not all(isinstance(r, str) for r in stream):
            raise ValueError(f"reference stream {i} must hold {len(hyps)} strings, one per hypothesis, "
                             f"got {len(stream)} items")
    return streams


def bleu(hyps: Sequence[str], refs: Sequence[str] | Sequence[Sequence[str]], tokenize: str = "13a") -> float:
    """Corpus BLEU (0-100) by sacrebleu.

    ``refs`` is one reference per hypothesis, or several such lists (reference streams). ``tokenize`` is sacrebleu's
    tokeniser: ``13a`` for spaced scripts, ``zh`` / ``char`` where words are not spaced (cmn_Hans, ...).
    """
    return float(sacrebleu.corpus_bleu(list(hyps), _reference_streams(hyps, refs), tokenize=tokenize).score)


def chrf(hyps: Sequence[str], refs: Sequence[str] | Sequence[Sequence[str]], word_order: int = 0) -> float:
    """Corpus chrF (0-100) by sacrebleu; ``word_order=2`` gives chrF++. ``refs`` as for ``bleu``."""
    return float(sacrebleu.corpus_chrf(list(hyps), _reference_streams(hyps, refs), word_order=word_order).score)


T = TypeVar("T")


def _take(x: Any, idx: np.ndarray) -> Any:
    """Items ``idx`` of ``x`` along its first axis: tensor, array or list."""
    if isinstance(x, torch.Tensor):
        return x[torch.as_tensor(idx, device=x.device)]
    if isinstance(x, np.ndarray):
        return x[idx]
    return [x[i] for i in idx]


def per_group(metric: Callable[..., T], groups: Sequence[Any] | np.ndarray | torch.Tensor, *inputs: Any,
              **kwargs: Any) -> dict[str, T]:
    """``{group: metric on its items, ..., "all": metric on every item}``, groups sorted.

    ``inputs`` are the metric's positional arguments, one item per row along their first axis (scores [N], labels
    [N], a query x candidate matrix [N, C], hypotheses ...); ``groups [N]`` names each item's group (language,
    source, ...); ``kwargs`` pass through. ``per_group(eer, langs, scores, labels)`` gives the EER per language.
    """
    keys = [str(g) for g in (groups.tolist() if isinstance(groups, np.ndarray | torch.Tensor) else groups)]
    if "all" in keys:
        raise ValueError('a group may not be named "all": that key holds the overall value')
    for i, x in enumerate(inputs):
        if len(x) != len(keys):
            raise ValueError(f"input {i} has {len(x)} items but there are {len(keys)} group labels")
    labels = np.asarray(keys)
    out: dict[str, T] = {}
    for name in sorted(set(keys)):
        idx = np.flatnonzero(labels == name)
        try:
            out[name] = metric(*(_take(x, idx) for x in inputs), **kwargs)
        except ValueError as e:
            raise ValueError(f"group {name!r}: {e}") from e
    out["all"] = metric(*inputs, **kwargs)
    return out
