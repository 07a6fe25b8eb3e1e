"""AdamW with warm-up and cosine decay that follows the step or the wall-time budget, shared by every family."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Timer
from torch import nn


def warmup_cosine(step: int, warmup: int, total: int, floor: float, time_progress: float = 0.0) -> float:
    """LR multiplier: linear warm-up, then cosine decay to ``floor``.

    The decay follows whichever budget runs out first: steps, or wall time (``time_progress``,
    the used share of ``trainer.max_time``), so a time-capped run still ends at a low LR.
    """
    if step < warmup:
        return (step + 1) / max(warmup, 1)
    progress = min(1.0, max((step - warmup) / max(total - warmup, 1), time_progress))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def time_progress(trainer: L.Trainer | None) -> float:
    """Share of ``trainer.max_time`` used so far (0 without a time budget); rank 0's clock decides."""
    timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None) if trainer else None  # type: ignore[attr-defined]
    remaining = timer.time_remaining("train") if timer else None
    if trainer is None or timer is None or remaining is None:
        return 0.0
    elapsed = timer.time_elapsed("train")
    progress = elapsed / max(elapsed + remaining, 1e-9)
    # Every rank must apply the same LR.
    return float(trainer.strategy.broadcast(progress)) if trainer.world_size > 1 else progress


def decay_groups(named: Iterable[tuple[str, nn.Parameter]], weight_decay: float,
                 lr: float | None = None) -> list[dict[str, Any]]:
    """Trainable matrices with weight decay, vectors (biases, norms) without; empty groups dropped."""
    params = [p for _, p in named if p.requires_grad]
    extra = {} if lr is None else {"lr": lr}
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay, **extra},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0, **extra}]
    return [g for g in groups if g["params"]]


def adamw_warmup_cosine(module: L.LightningModule, groups: list[dict[str, Any]], lr: float,
                        betas: Iterable[float], warmup: int, floor: float) -> dict[str, Any]:
    """The ``configure_optimizers`` result: AdamW (``LazyAdamW`` when a parameter has sparse gradients) and a
    per-step ``warmup_cosine`` schedule."""
    sparse = any(getattr(m, "sparse", False) for m in module.modules() if isinstance(m, nn.Embedding))
    cls = LazyAdamW if sparse else torch.optim.AdamW
    opt = cls(groups, lr=lr, betas=tuple(betas))  # type: ignore[arg-type]
    steps = module.trainer.estimated_stepping_batches
    # With no step or epoch limit (a time budget alone), the decay follows the clock (time_progress) only.
    total = int(steps) if math.isfinite(steps) else 1 << 62
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: warmup_cosine(s, warmup, total, floor, time_progress(module._trainer))
    )
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def clip_dense_grad_norm(module: torch.nn.Module, max_norm: float) -> None:
    """Clip the norm of the dense gradients only: hashed tables' sparse ones are not clipped (row-wise AdaGrad)."""
    dense = [p for p in module.parameters() if p.grad is not None and not p.grad.is_sparse]
    torch.nn.utils.clip_grad_norm_(dense, max_norm)


class LazyAdamW(torch.optim.Optimizer):
    """AdamW for dense gradients; row-wise AdaGrad for sparse ones (hashed embedding tables).

    A sparse gradient touches a few thousand rows of a table of millions: those rows alone are read and written, with
    one accumulator per row (as in large recommendation models), so a step costs what the batch touches, not the table.
    Rows move at ``lr * sparse_lr_scale`` (AdaGrad's steps shrink on their own, and a row sees few updates).
    """

    def __init__(self, params: Any, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, sparse_lr_scale: float = 100.0):
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "sparse_lr_scale": sparse_lr_scale}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if p.grad.is_sparse:
                    grad = p.grad.coalesce()
                    rows, vals = grad.indices()[0], grad.values()
                    if "sum_sq" not in state:
                        state["sum_sq"] = torch.zeros(p.shape[0], device=p.device, dtype=p.dtype)
                    acc = state["sum_sq"].index_select(0, rows) + vals.pow(2).mean(1)
                    state["sum_sq"].index_copy_(0, rows, acc)
                    p.index_add_(0, rows, vals / (acc.sqrt() + eps)[:, None], alpha=-lr * group["sparse_lr_scale"])
                    continue
                if not state:
                    state["step"] = 0
                    state["m"] = torch.zeros_like(p)
                    state["v"] = torch.zeros_like(p)
                state["step"] += 1
                p.mul_(1 - lr * group["weight_decay"])
                state["m"].mul_(b1).add_(p.grad, alpha=1 - b1)
                state["v"].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                m_hat = state["m"] / (1 - b1 ** state["step"])
                v_hat = state["v"] / (1 - b2 ** state["step"])
                p.addcdiv_(m_hat, v_hat.sqrt().add_(eps), value=-lr)
        return loss
