"""The evaluation report of a source tracer on one split: closed-set, open-set, binary, calibration, breakdowns.

``trace_report(outputs, calibration, sources, families)`` returns flat metrics (logged as ``test/...``) and the full
report; ``write_report`` adds ``report.json`` and ``confusion.png`` to a folder. All scores come from
common.scoring. The closed-set ``cllr`` is the multi-class one of the calibrated probabilities and ``eer`` their
one-vs-rest EER. Binary Cllr needs log-likelihood ratios: the binary task's are the calibrated log-odds of
"bonafide"; an open-set score is not one, so its ``cllr_min`` is that of the score after the best affine map on the
split itself (a lower bound, as ASVspoof's minimum Cllr).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from common.io import atomic_open
from common.metrics import per_group
from common.scoring import auroc, balanced_accuracy, cllr, eer, expected_calibration_error, macro_f1, min_dcf
from speech.source_trace.calibration import OPEN_SET_SCORES, Calibration

UNKNOWN = "unknown"
BONAFIDE = "bonafide"


@dataclass
class Outputs:
    """A split's network outputs and labels (-1: a source or family outside the known ones)."""

    source_logits: Tensor
    family_logits: Tensor
    embedding: Tensor
    source: Tensor
    family: Tensor
    meta: dict[str, list[str]]
    """id, source, family, lang, speaker, channel per row."""

    @classmethod
    def cat(cls, parts: list[Outputs]) -> Outputs:
        def cat(k: str) -> Tensor:
            return torch.cat([getattr(p, k) for p in parts])

        meta = {k: [v for p in parts for v in p.meta[k]] for k in (parts[0].meta if parts else {})}
        return cls(cat("source_logits"), cat("family_logits"), cat("embedding"), cat("source"), cat("family"), meta)


def accuracy(preds: np.ndarray, labels: np.ndarray) -> float:
    return float((np.asarray(preds) == np.asarray(labels)).mean())


def affine_cllr(scores: np.ndarray, labels: np.ndarray) -> float:
    """Cllr after the logistic-regression affine map fitted on these trials (a lower bound on any calibration)."""
    prior = float(np.log(labels.mean() / (1 - labels.mean())))
    with torch.inference_mode(False), torch.enable_grad():  # Lightning tests in inference mode
        s = torch.tensor((scores - scores.mean()) / (scores.std() + 1e-9), dtype=torch.float64)
        y = torch.tensor(labels, dtype=torch.float64)
        ab = torch.zeros(2, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([ab], max_iter=100, line_search_fn="strong_wolfe")

        def closure() -> Tensor:
            opt.zero_grad()
            loss = F.binary_cross_entropy_with_logits(ab[0] * s + ab[1] + prior, y)
            loss.backward()
            return loss

        opt.step(closure)
        llr = (ab[0] * s + ab[1]).detach().numpy()
    return cllr(llr, labels)


def multiclass_cllr(probs: Tensor, labels: np.ndarray) -> float:
    """Multi-class Cllr in bits (Brümmer and van Leeuwen's C_mxe): the class-balanced mean of -log2 of the calibrated
    probability of the true class. Binary Cllr is its two-class case: 0 is perfect, log2(K) an uninformative
    system that always says 1/K."""
    y = torch.as_tensor(labels).long()
    cost = -probs.double().clamp_min(1e-12).log2().gather(1, y[:, None]).squeeze(1)
    return float(torch.stack([cost[y == k].mean() for k in y.unique()]).mean())


def one_vs_rest_eer(probs: Tensor, labels: np.ndarray) -> float:
    """Pooled EER of the calibrated probabilities as detection trials: each clip's true class is a target trial
    and every other known class a non-target one."""
    y = torch.as_tensor(labels).long()
    target = F.one_hot(y, probs.shape[1]).bool()
    return eer(probs.double().flatten().numpy(), target.flatten().numpy().astype(int))[0]


def detection(scores: np.ndarray, labels: np.ndarray, llr: bool) -> dict[str, float]:
    """EER, minDCF (p_target 0.05), AUROC and Cllr of detection trials (label 1 = target)."""
    out = {"eer": eer(scores, labels)[0], "min_dcf": min_dcf(scores, labels, p_target=0.05)[0],
           "auroc": auroc(scores, labels)}
    out["cllr" if llr else "cllr_min"] = cllr(scores, labels) if llr else affine_cllr(scores, labels)
    return out


def trace_report(out: Outputs, cal: Calibration, sources: list[str],
                 families: list[str]) -> tuple[dict[str, float], dict[str, Any]]:
    """Flat metrics and the full report of one split."""
    src_prob = F.softmax(out.source_logits.float() / cal.source_temperature, dim=-1)
    fam_prob = F.softmax(out.family_logits.float() / cal.family_temperature, dim=-1)
    y = out.source.numpy()
    known = y >= 0
    scores = {k: v.numpy() for k, v in cal.scores(out.source_logits, out.embedding).items()}
    pred = src_prob.argmax(-1).numpy()
    names = np.array([*sources, UNKNOWN])
    open_pred = np.where(scores[cal.score] < cal.threshold, len(sources), pred)
    m: dict[str, float] = {"clips": float(len(y)), "known_clips": float(known.sum())}
    report: dict[str, Any] = {"sources": sources, "families": families, "score": cal.score,
                              "threshold": cal.threshold, "temperature": cal.source_temperature}
    if known.any():
        yk, pk, probk = y[known], pred[known], src_prob[known]
        m |= {"acc": accuracy(pk, yk), "macro_f1": macro_f1(pk, yk, classes=range(len(sources))),
              "balanced_acc": balanced_accuracy(pk, yk), "ece": expected_calibration_error(probk, yk),
              "ece_raw": expected_calibration_error(F.softmax(out.source_logits[known].float(), -1), yk),
              "cllr": multiclass_cllr(probk, yk), "eer": one_vs_rest_eer(probk, yk),
              "nll": float(F.nll_loss(probk.clamp_min(1e-12).log(), torch.as_tensor(yk)))}
        groups = {}
        for key in ("lang", "channel", "source"):
            g = np.array(out.meta[key])[known]
            groups[key] = {"acc": per_group(accuracy, g, pk, yk),
                           "macro_f1": per_group(lambda p, t: macro_f1(p, t), g, pk, yk)}
        report["breakdown"] = groups
    fy = out.family.numpy()
    if (fy >= 0).any():
        fp = fam_prob.argmax(-1).numpy()
        m |= {"family_acc": accuracy(fp[fy >= 0], fy[fy >= 0]),
              "family_macro_f1": macro_f1(fp[fy >= 0], fy[fy >= 0], classes=range(len(families)))}
    if known.any() and not known.all():  # open set: known (target) vs unknown sources
        report["open_set"] = {k: detection(s, known.astype(int), llr=False) for k, s in scores.items()
                              if k in OPEN_SET_SCORES}
        for k, v in report["open_set"][cal.score].items():
            m[f"open_{k}"] = v
        truth = np.where(known, y, len(sources))
        m["open_macro_f1"] = macro_f1(open_pred, truth, classes=range(len(sources) + 1))
        m["unknown_recall"] = accuracy(open_pred[~known] == len(sources), np.ones((~known).sum(), bool))
    bona = np.array([s == BONAFIDE for s in out.meta["source"]])
    if BONAFIDE in sources and bona.any() and not bona.all():
        p = src_prob[:, sources.index(BONAFIDE)].double().clamp(1e-12, 1 - 1e-12)
        llr = (p.log() - (1 - p).log()).numpy()
        report["binary"] = detection(llr, bona.astype(int), llr=True)
        m |= {f"bonafide_{k}": v for k, v in report["binary"].items()}
    truth_names = np.where(known, names[np.clip(y, 0, None)], UNKNOWN)
    labels = sources + ([UNKNOWN] if not known.all() or (open_pred == len(sources)).any() else [])
    conf = np.zeros((len(labels), len(labels)), dtype=int)
    index = {n: i for i, n in enumerate(labels)}
    for t, p_ in zip(truth_names, names[open_pred]):
        conf[index[str(t)], index[str(p_)]] += 1
    report["confusion"] = {"labels": labels, "matrix": conf.tolist()}
    report["metrics"] = m
    return m, report


def write_report(report: dict[str, Any], out_dir: str | Path) -> Path:
    """``report.json`` and ``confusion.png`` (rows: true source, columns: predicted) in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_open(out / "report.json", "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2, ensure_ascii=False)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, conf = report["confusion"]["labels"], np.array(report["confusion"]["matrix"])
    size = 2.5 + 0.45 * len(labels)
    fig, ax = plt.subplots(figsize=(size, size))
    norm = conf / np.maximum(conf.sum(1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if conf[i, j]:
                ax.text(j, i, str(conf[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"macro-F1 {report['metrics'].get('macro_f1', float('nan')):.3f}")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    with atomic_open(out / "confusion.png", "wb") as f:
        f.write(buf.getvalue())
    return out
