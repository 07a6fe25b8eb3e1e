"""Calibrated probabilities and an "unknown source" decision, fitted on dev data and saved with the model.

* Temperature scaling (Guo et al., 2017) of each head: one scalar T minimising dev NLL of ``softmax(logits / T)``.
* Open-set scores, higher = more like a known source: maximum softmax probability (Hendrycks and Gimpel, 2017),
  energy ``T * logsumexp(logits / T)`` (Liu et al., 2020) and the negative distance to the k-th nearest dev
  embedding (Sun et al., 2022; on dev itself leave-one-out, so a clip is never its own neighbour).
* A threshold on the chosen score: the equal-error point when dev holds unknown sources. A dev set of known sources
  only has no unknown generator to tune on; then ``rule`` says how: ``accept_known`` takes the score that accepts
  that share of the known dev clips, ``leave_one_source_out`` the equal-error point between the known dev clips
  and the same clips scored as if their own source were unknown (its logit dropped for msp and energy, its clips
  left out of the bank for knn): every known source plays the unknown one in turn.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save
from torch import Tensor

from common.io import atomic_open
from common.scoring import eer

OPEN_SET_SCORES = ("msp", "energy", "knn")
THRESHOLD_RULES = ("accept_known", "leave_one_source_out")


def fit_temperature(logits: Tensor, labels: Tensor, steps: int = 100, smoothing: float = 0.01) -> float:
    """The temperature minimising the NLL of ``labels`` (smoothed by ``smoothing``) under ``softmax(logits / T)``;
    1.0 when there is no data."""
    if len(labels) == 0:
        return 1.0
    with torch.inference_mode(False), torch.enable_grad():  # Lightning validates in inference mode
        logits, labels = logits.detach().clone().double(), labels.clone().long()
        log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=steps, line_search_fn="strong_wolfe")

        def closure() -> Tensor:
            opt.zero_grad()
            # A little smoothing keeps the optimum finite when dev is perfectly separated (else T -> 0).
            loss = F.cross_entropy(logits / log_t.exp(), labels, label_smoothing=smoothing)
            loss.backward()
            return loss

        opt.step(closure)
    return float(log_t.detach().exp().clamp(0.05, 100.0))


def msp_score(logits: Tensor, temperature: float = 1.0) -> Tensor:
    """Top calibrated probability [N]."""
    return F.softmax(logits.float() / temperature, dim=-1).amax(-1)


def energy_score(logits: Tensor, temperature: float = 1.0) -> Tensor:
    """Negative free energy [N]: high where the logits are confidently large."""
    return temperature * torch.logsumexp(logits.float() / temperature, dim=-1)


def knn_score(emb: Tensor, bank: Tensor, k: int, exclude_self: bool = False) -> Tensor:
    """Minus the cosine distance to the k-th nearest bank embedding [N]; ``exclude_self`` when ``emb`` is the bank."""
    if len(bank) == 0:
        return torch.zeros(len(emb))
    sim = F.normalize(emb.float(), dim=-1) @ F.normalize(bank.float(), dim=-1).T  # [N, M]
    if exclude_self:
        sim = sim - 3.0 * torch.eye(len(emb), len(bank))  # drops each clip's own entry below any neighbour
    kk = min(k, sim.shape[1] - (1 if exclude_self else 0))
    return -(1.0 - sim.topk(max(kk, 1), dim=1).values[:, -1])


def own_source_unknown(source_logits: Tensor, emb: Tensor, labels: Tensor, bank: Tensor, bank_labels: Tensor,
                       score: str, k: int, temperature: float) -> Tensor:
    """The open-set score [N] of known clips as if their own source were unknown: its logit left out (msp, energy),
    or the bank's clips of that source left out (knn)."""
    if score == "knn":
        out = torch.zeros(len(emb))
        for c in labels.unique():
            rows = labels == c
            out[rows] = knn_score(emb[rows], bank[bank_labels != c], k)
        return out
    logits = source_logits.float().scatter(1, labels.long()[:, None], float("-inf"))
    return msp_score(logits, temperature) if score == "msp" else energy_score(logits, temperature)


@dataclass
class Calibration:
    """Everything fitted on dev that turns logits and embeddings into calibrated answers."""

    source_temperature: float = 1.0
    """Temperature of the source head."""
    family_temperature: float = 1.0
    """Temperature of the family head."""
    score: str = "msp"
    """The open-set score the threshold applies to: msp | energy | knn."""
    threshold: float = float("-inf")
    """Below it a clip is "unknown" (-inf: never)."""
    k: int = 5
    """Neighbour rank of the kNN score."""
    bank: Tensor = field(default_factory=lambda: torch.zeros(0, 0))
    """Dev embeddings of known sources [M, D] for the kNN score."""
    report: dict[str, Any] = field(default_factory=dict)
    """Dev figures: NLL and ECE before and after scaling, how the threshold was set."""

    def scores(self, source_logits: Tensor, emb: Tensor, exclude_self: bool = False) -> dict[str, Tensor]:
        """Every open-set score [N] by name."""
        t = self.source_temperature
        return {"msp": msp_score(source_logits, t), "energy": energy_score(source_logits, t),
                "knn": knn_score(emb, self.bank, self.k, exclude_self)}

    def known_score(self, source_logits: Tensor, emb: Tensor) -> Tensor:
        """The chosen open-set score [N]."""
        return self.scores(source_logits, emb)[self.score]

    def save(self, path: str | os.PathLike[str]) -> None:
        """One safetensors file: the bank as a tensor, the rest as JSON metadata (atomically)."""
        meta = {k: v for k, v in asdict(self).items() if k != "bank"}
        with atomic_open(path, "wb") as f:
            f.write(save({"bank": self.bank.float().contiguous()}, metadata={"calibration": json.dumps(meta)}))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Calibration:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("calibration", "{}"))
        return cls(**meta, bank=load_file(str(path))["bank"])


def fit_calibration(source_logits: Tensor, family_logits: Tensor, emb: Tensor, source_labels: Tensor,
                    family_labels: Tensor, score: str = "msp", k: int = 5, accept_known: float = 0.95,
                    max_bank: int = 4096, seed: int = 0, rule: str = "accept_known") -> Calibration:
    """Fit temperatures, the kNN bank and the threshold on dev outputs; labels are -1 for unknown sources;
    ``rule`` sets the threshold when every dev clip is of a known source (see the module's docstring)."""
    if score not in OPEN_SET_SCORES:
        raise ValueError(f"open-set score {score!r}: choose from {list(OPEN_SET_SCORES)}")
    if rule not in THRESHOLD_RULES:
        raise ValueError(f"threshold rule {rule!r}: choose from {list(THRESHOLD_RULES)}")
    known = source_labels >= 0
    fam_known = family_labels >= 0
    t_src = fit_temperature(source_logits[known], source_labels[known])
    t_fam = fit_temperature(family_logits[fam_known], family_labels[fam_known])
    bank, bank_labels = emb[known].float(), source_labels[known]
    if len(bank) > max_bank:
        keep = torch.randperm(len(bank), generator=torch.Generator().manual_seed(seed))[:max_bank]
        bank, bank_labels = bank[keep], bank_labels[keep]
    cal = Calibration(t_src, t_fam, score, float("-inf"), k, bank.contiguous())
    # On dev the bank is dev itself: leave-one-out (every known row is in the bank unless it was subsampled away).
    loo = len(bank) == int(known.sum())
    all_scores = cal.scores(source_logits, emb)
    if score == "knn" and loo:
        all_scores["knn"][known] = knn_score(emb[known], bank, k, exclude_self=True)
    s = all_scores[score].double().numpy()
    is_known = known.numpy()
    extra: dict[str, float] = {}
    if not is_known.any():
        how = "no known dev clip: never unknown"
    elif not is_known.all():
        how = "equal error rate on dev (known vs unknown sources)"
        cal.threshold = eer(s, is_known)[1]
    elif rule == "leave_one_source_out" and len(source_labels[known].unique()) > 1:
        pseudo = own_source_unknown(source_logits[known], emb[known], source_labels[known], bank, bank_labels, score,
                                    k, t_src).double().numpy()
        how = "equal error rate on dev, each known source left out in turn as the unknown one"
        extra["pseudo_unknown_eer"], cal.threshold = eer(np.concatenate([s, pseudo]),
                                                          np.r_[np.ones(len(s)), np.zeros(len(pseudo))])
    else:
        how = f"accepts {accept_known:.0%} of known dev clips"
        cal.threshold = float(np.quantile(s[is_known], 1.0 - accept_known))
    if is_known.any():
        extra["known_accepted"] = float((s[is_known] >= cal.threshold).mean())
    cal.report = {"threshold_rule": how, **extra,
                  **temperature_report(source_logits[known], source_labels[known], t_src)}
    return cal


def temperature_report(logits: Tensor, labels: Tensor, temperature: float) -> dict[str, float]:
    """NLL and ECE of the source head before and after temperature scaling."""
    if len(labels) == 0:
        return {}
    from common.scoring import expected_calibration_error

    out = {}
    for name, t in (("raw", 1.0), ("calibrated", temperature)):
        p = F.softmax(logits.float() / t, dim=-1)
        out[f"nll_{name}"] = float(F.nll_loss(p.clamp_min(1e-12).log(), labels.long()))
        out[f"ece_{name}"] = expected_calibration_error(p, labels)
    return out


def calibration_from_state(state: dict[str, Any] | None) -> Calibration | None:
    """A Calibration from a checkpoint entry (``asdict`` with the bank as a tensor)."""
    return None if not state else Calibration(**state)


def calibration_path(model_dir: str | os.PathLike[str]) -> Path:
    return Path(model_dir) / "calibration.safetensors"
