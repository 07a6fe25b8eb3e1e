"""Detection and classification scores over numpy arrays or tensors: EER, minDCF, Cllr, AUROC, macro-F1, balanced
accuracy and expected calibration error. ROC, F1 and calibration come from scikit-learn and torchmetrics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score, roc_curve
from torchmetrics.functional.classification import binary_calibration_error, multiclass_calibration_error

ArrayLike = np.ndarray | torch.Tensor | Sequence[Any]


def as_numpy(x: ArrayLike, name: str) -> np.ndarray:
    """``x`` as a numpy array (tensors detached and moved to the CPU); ``name`` is for error messages."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        return (x.float() if x.dtype == torch.bfloat16 else x).numpy()  # numpy has no bfloat16
    try:
        return np.asarray(x)
    except ValueError as e:  # ragged lists
        raise ValueError(f"{name} is not a rectangular array: {e}") from None


def _vector(x: ArrayLike, name: str) -> np.ndarray:
    a = as_numpy(x, name)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {a.shape}")
    return a


def _same_length(a: np.ndarray, b: np.ndarray, names: str) -> None:
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"{names} must have the same length, got {a.shape[0]} and {b.shape[0]}")


def _trials(scores: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validated detection trials: float scores [N] and bool labels [N] (True: target / bona fide / positive)."""
    s, y = _vector(scores, "scores").astype(np.float64), _vector(labels, "labels")
    _same_length(s, y, "scores and labels")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels must be 0/1 or bool (1 = target), got values {np.unique(y)[:5].tolist()}")
    y = y.astype(bool)
    if y.all() or not y.any():
        raise ValueError(f"need both target and non-target trials, got {int(y.sum())} targets of {y.size}")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    return s, y


def eer(scores: ArrayLike, labels: ArrayLike) -> tuple[float, float]:
    """Equal error rate and its threshold (accept when ``score >= threshold``), from the ROC curve.

    As in the ASVspoof toolkit and torchmetrics: at the ROC point where the miss and false-alarm rates are closest,
    their mean. Perfect separation gives 0 and reversed scores 1.
    """
    s, y = _trials(scores, labels)
    fpr, tpr, thresholds = roc_curve(y, s, drop_intermediate=False)  # every threshold: no point skipped
    fnr = 1 - tpr
    i = int(np.argmin(np.abs(fnr - fpr)))
    return float((fpr[i] + fnr[i]) / 2), float(thresholds[i])


def min_dcf(scores: ArrayLike, labels: ArrayLike, p_target: float = 0.01, c_miss: float = 1.0,
            c_fa: float = 1.0) -> tuple[float, float]:
    """Minimum normalised detection cost over thresholds and its threshold (NIST SRE, ASVspoof).

    ``DCF = c_miss * p_target * P_miss + c_fa * (1 - p_target) * P_fa``, divided by the cost of the better trivial
    system (accept all or reject all), so 1 means no better than not looking at the scores.
    """
    if not 0 < p_target < 1 or c_miss <= 0 or c_fa <= 0:
        raise ValueError(f"need 0 < p_target < 1 and positive costs, got {p_target=}, {c_miss=}, {c_fa=}")
    s, y = _trials(scores, labels)
    fpr, tpr, thresholds = roc_curve(y, s, drop_intermediate=False)  # includes reject-all (inf) and accept-all
    dcf = c_miss * p_target * (1 - tpr) + c_fa * (1 - p_target) * fpr
    dcf = dcf / min(c_miss * p_target, c_fa * (1 - p_target))
    i = int(np.argmin(dcf))
    return float(dcf[i]), float(thresholds[i])


def cllr(llrs: ArrayLike, labels: ArrayLike) -> float:
    """Log-likelihood-ratio cost in bits (Brümmer and du Preez, 2006); ``llrs`` are natural-log likelihood ratios.

    0 for a perfect calibrated system, 1 for one that always says ``llr = 0``; above 1 means harmful scores.
    """
    s, y = _trials(llrs, labels)
    # log(1 + e^-llr) for targets and log(1 + e^llr) for non-targets; logaddexp keeps large |llr| from overflowing.
    target_cost = np.logaddexp(0.0, -s[y]).mean()
    nontarget_cost = np.logaddexp(0.0, s[~y]).mean()
    return float((target_cost + nontarget_cost) / (2 * np.log(2)))


def auroc(scores: ArrayLike, labels: ArrayLike) -> float:
    """Area under the ROC curve (scikit-learn); 0.5 is chance, 1 perfect separation."""
    s, y = _trials(scores, labels)
    return float(roc_auc_score(y, s))


def _class_predictions(preds: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p, y = as_numpy(preds, "preds"), _vector(labels, "labels")
    if p.ndim == 2:  # scores or probabilities [N, C]: the top class
        p = p.argmax(axis=1)
    if p.ndim != 1:
        raise ValueError(f"preds must be class ids [N] or class scores [N, C], got shape {p.shape}")
    _same_length(p, y, "preds and labels")
    if p.size == 0:
        raise ValueError("no predictions")
    return p, y


def macro_f1(preds: ArrayLike, labels: ArrayLike, classes: Sequence[Any] | None = None) -> float:
    """Unweighted mean of the per-class F1 (scikit-learn); ``preds`` are class ids [N] or class scores [N, C].

    ``classes`` fixes the classes averaged over (default: those in ``preds`` or ``labels``); a class never predicted
    and never true counts as F1 0.
    """
    p, y = _class_predictions(preds, labels)
    return float(f1_score(y, p, labels=None if classes is None else list(classes), average="macro", zero_division=0.0))


def balanced_accuracy(preds: ArrayLike, labels: ArrayLike) -> float:
    """Mean per-class recall over the true classes (scikit-learn); ``preds`` are class ids or class scores."""
    p, y = _class_predictions(preds, labels)
    return float(balanced_accuracy_score(y, p))


def expected_calibration_error(probs: ArrayLike, labels: ArrayLike, n_bins: int = 15) -> float:
    """ECE with ``n_bins`` equal-width confidence bins (Guo et al., 2017), by torchmetrics' CalibrationError (L1).

    ``probs [N]`` are probabilities of the positive class (binary: their calibration against the 0/1 labels), or
    ``probs [N, C]`` class probabilities (multiclass: the top probability against whether the top class is right).
    """
    p = torch.as_tensor(as_numpy(probs, "probs"), dtype=torch.float32)
    y = torch.as_tensor(_vector(labels, "labels")).long()
    _same_length(p.numpy(), y.numpy(), "probs and labels")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if p.numel() == 0 or not ((p >= 0) & (p <= 1)).all():
        raise ValueError("probs must be non-empty probabilities in [0, 1] (apply sigmoid/softmax to logits first)")
    if p.ndim == 1:
        if not torch.isin(y, torch.tensor([0, 1])).all():
            raise ValueError("binary labels must be 0/1")
        return float(binary_calibration_error(p, y, n_bins=n_bins, norm="l1"))
    if p.ndim == 2:
        if y.min() < 0 or y.max() >= p.shape[1]:
            raise ValueError(f"labels must be class ids in [0, {p.shape[1]}), got {y.min()}..{y.max()}")
        return float(multiclass_calibration_error(p, y, num_classes=p.shape[1], n_bins=n_bins, norm="l1"))
    raise ValueError(f"probs must be [N] or [N, C], got shape {tuple(p.shape)}")
