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
    """The ``configure_optimizers`` result: AdamW and a per-step ``warmup_cosine`` schedule."""
    opt = torch.optim.AdamW(groups, lr=lr, betas=tuple(betas))  # type: ignore[arg-type]
    total = int(module.trainer.estimated_stepping_batches)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: warmup_cosine(s, warmup, total, floor, time_progress(module._trainer))
    )
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
