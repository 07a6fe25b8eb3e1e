"""LightningModule of the language-ID head: weighted cross-entropy on crops, per-epoch dev scores, best epoch kept."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor

from speech.asr.lid import LIDHead

log = logging.getLogger(__name__)
Batch = tuple[Tensor, Tensor, Tensor]
"""(frames [B, T, D], frame counts [B], language indices [B])."""


class LIDHeadModule(L.LightningModule):
    """Fits ``head`` with AdamW and a one-cycle LR; after every epoch scores it and keeps the best epoch's weights.

    The score is ``dev_acc + dev_acc_2s - 1e-3 * train_loss`` (``dev`` returns the accuracies); without ``dev``
    the last epoch wins. ``train_clips`` is the number of clips in an epoch (for the mean training loss).
    """

    class_weight: Tensor

    def __init__(self, head: LIDHead, class_weight: Tensor, steps_per_epoch: int, epochs: int, train_clips: int,
                 lr: float = 2e-3, weight_decay: float = 0.01,
                 dev: Callable[[LIDHead], dict[str, float]] | None = None):
        super().__init__()
        self.head, self.dev = head, dev
        self.register_buffer("class_weight", class_weight)  # [L]
        self.steps_per_epoch, self.epochs, self.train_clips = steps_per_epoch, epochs, train_clips
        self.lr, self.weight_decay = lr, weight_decay
        self.loss_sum = 0.0
        self.evaluated_at = 0
        self.best: tuple[float, dict[str, Tensor], dict[str, float]] | None = None

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        x, lens, y = batch
        loss = F.cross_entropy(self.head(x, lens), y, weight=self.class_weight)
        self.log("train/loss", loss, batch_size=len(y))
        self.loss_sum += float(loss.detach()) * len(y)
        return loss

    def on_train_batch_start(self, batch: Batch, batch_idx: int) -> None:
        # A run resumed from a checkpoint written at an epoch's last step scores that epoch first.
        self._end_epoch()

    def on_train_batch_end(self, outputs: Any, batch: Batch, batch_idx: int) -> None:
        self._end_epoch()

    def _end_epoch(self) -> None:
        step = self.global_step
        if step == 0 or step % self.steps_per_epoch or step == self.evaluated_at:
            return
        self.evaluated_at = step
        metrics = {"epoch": float(step // self.steps_per_epoch - 1), "train_loss": self.loss_sum / self.train_clips}
        self.loss_sum = 0.0
        if self.dev is not None:
            metrics |= self.dev(self.head)
            self.head.train()
        score = metrics.get("dev_acc", 0.0) + metrics.get("dev_acc_2s", 0.0) - 1e-3 * metrics["train_loss"]
        log.info("epoch %d: %s", metrics["epoch"], {k: round(v, 4) for k, v in metrics.items()})
        self.log_dict({f"epoch/{k}": v for k, v in metrics.items() if k != "epoch"})
        if self.best is None or score > self.best[0] or self.dev is None:
            self.best = (score, {k: v.detach().clone() for k, v in self.head.state_dict().items()}, metrics)

    def best_head(self) -> tuple[LIDHead, dict[str, float]]:
        """The head with the best epoch's weights (the current ones if no epoch ended), in eval mode."""
        if self.best is not None:
            self.head.load_state_dict(self.best[1])
        return self.head.eval(), dict(self.best[2]) if self.best is not None else {}

    def configure_optimizers(self) -> Any:
        opt = torch.optim.AdamW(self.head.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        total = self.epochs * self.steps_per_epoch
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, self.lr, total_steps=total, pct_start=0.1)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["lid"] = {"loss_sum": self.loss_sum, "evaluated_at": self.evaluated_at,
                             "best": list(self.best) if self.best is not None else None}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint["lr_schedulers"][0]["total_steps"] if checkpoint.get("lr_schedulers") else None
        if saved is not None and saved != self.epochs * self.steps_per_epoch:
            raise ValueError(f"the checkpoint's one-cycle schedule spans {saved} steps, this run "
                             f"{self.epochs * self.steps_per_epoch}: resume with the same epochs, batch_size and data")
        state = checkpoint["lid"]
        self.loss_sum, self.evaluated_at = float(state["loss_sum"]), int(state["evaluated_at"])
        self.best = tuple(state["best"]) if state["best"] is not None else None
