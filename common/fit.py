"""Lightning Trainer for the suite's short fine-tuning loops (language extension, LID heads): settings, resume, data.

The loops draw their batches from a seeded plan. ``StepStream`` replays that plan up to the trainer's step, so a
resumed run sees exactly the batches that an uninterrupted one would have seen, and ``RngState`` stores the torch
random state in the checkpoint for the same reason (dropout and SpecAugment masks).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, IterableDataset

from common.runner import resolve_ckpt

Spec = TypeVar("Spec")
Batch = TypeVar("Batch")
LAST = "last.ckpt"


@dataclass
class FitSettings:
    """How a loop runs: the trainer keys of configs/trainer, where checkpoints go and what to resume from."""

    run_dir: str | None = None
    """Run folder: ``checkpoints/last.ckpt`` and ``csv/metrics.csv`` go there; None writes nothing."""
    resume: str | None = None
    """Checkpoint to continue from: a path, or ``last`` for ``<run_dir>/checkpoints/last.ckpt``."""
    ckpt_every: int = 0
    """Also save ``last.ckpt`` every this many optimiser steps (0: only when training ends)."""
    precision: str = "32-true"
    """Lightning precision, e.g. ``bf16-mixed``."""
    accelerator: str = "auto"
    """``auto``, ``cpu`` or ``gpu``."""
    devices: int | str = 1
    """Devices of that accelerator (several: DDP, each rank taking every n-th batch of the plan)."""
    callbacks: list[Callback] = field(default_factory=list)
    """Extra callbacks (the run's own checkpoint, learning-rate and RNG callbacks are added)."""

    @classmethod
    def from_args(cls, args: Mapping[str, Any], run_dir: str | None = None) -> FitSettings:
        """Settings from ``key=value`` arguments (``run_dir``, ``resume``, ``ckpt_every``, ``precision``, ...)."""
        devices = str(args.get("devices", 1))
        return cls(run_dir=str(args.get("run_dir") or run_dir) if (args.get("run_dir") or run_dir) else None,
                   resume=str(args["resume"]) if args.get("resume") else None,
                   ckpt_every=int(args.get("ckpt_every", 0)), precision=str(args.get("precision", "32-true")),
                   accelerator=str(args.get("accelerator", "auto")),
                   devices=int(devices) if devices.isdigit() else devices)


FIT_KEYS = ("run_dir", "resume", "ckpt_every", "precision", "accelerator", "devices")
"""The ``key=value`` arguments ``FitSettings.from_args`` reads."""


class RngState(Callback):
    """Keeps torch's random state in the checkpoint, so a resumed run draws the same masks as an unbroken one."""

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["cpu"])
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])


class StepStream(IterableDataset, Generic[Spec, Batch]):
    """Batches ``build(spec)`` of a seeded ``plan``, from the trainer's current step on (rank r of n: every n-th)."""

    def __init__(self, plan: Callable[[], Iterator[Spec]], build: Callable[[Spec], Batch]):
        self.plan, self.build = plan, build
        self.trainer: L.Trainer | None = None

    def __iter__(self) -> Iterator[Batch]:
        t = self.trainer
        world, rank = (t.world_size, t.global_rank) if t is not None else (1, 0)
        start = t.global_step * world if t is not None else 0  # one optimiser step takes one batch per rank
        for k, spec in enumerate(self.plan()):
            # Skipped specs are only planned, never built: replaying the plan is cheap.
            if k >= start and k % world == rank:
                yield self.build(spec)


def build_trainer(settings: FitSettings, max_steps: int, gradient_clip_val: float | None = None) -> L.Trainer:
    """A Trainer for one loop: no progress bar or summary, ``last.ckpt`` and CSV logs in the run folder if any."""
    callbacks: list[Callback] = [RngState(), *settings.callbacks]
    logger: Any = False
    if settings.run_dir is not None:
        callbacks.append(ModelCheckpoint(dirpath=Path(settings.run_dir) / "checkpoints", save_top_k=0, save_last=True,
                                         every_n_train_steps=settings.ckpt_every or None,
                                         enable_version_counter=False))
        logger = CSVLogger(settings.run_dir, name="csv", version="")
        callbacks.append(LearningRateMonitor(logging_interval="step"))
    return L.Trainer(max_steps=max_steps, max_epochs=-1, accelerator=settings.accelerator, devices=settings.devices,
                     precision=cast(Any, settings.precision), gradient_clip_val=gradient_clip_val, logger=logger,
                     callbacks=callbacks, enable_checkpointing=settings.run_dir is not None, log_every_n_steps=1,
                     enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                     default_root_dir=settings.run_dir)


def fit(module: L.LightningModule, data: StepStream[Any, Any] | DataLoader, settings: FitSettings, max_steps: int,
        gradient_clip_val: float | None = None) -> L.Trainer:
    """Train ``module`` for ``max_steps`` optimiser steps (resuming if asked) and save ``last.ckpt`` at the end."""
    if settings.resume == "last" and settings.run_dir is None:
        raise ValueError("resume=last needs a run folder (run_dir) to find checkpoints/last.ckpt in")
    ckpt = resolve_ckpt(settings.resume, settings.run_dir or ".")
    if ckpt is None and settings.run_dir and (Path(settings.run_dir) / "checkpoints" / LAST).exists():
        raise SystemExit(f"{settings.run_dir} already holds a checkpoint: resume with resume=last, or choose "
                         "another run folder")
    trainer = build_trainer(settings, max_steps, gradient_clip_val)
    if isinstance(data, StepStream):
        data.trainer = trainer
        # Own generator: creating the iterator must not draw from the global RNG that the model's masks use.
        data = DataLoader(data, batch_size=None, generator=torch.Generator())
    with warnings.catch_warnings():
        # The loops build small batches in the main process on purpose (their plan is sequential).
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        trainer.fit(module, data, ckpt_path=ckpt, weights_only=True)
    if settings.run_dir is not None:
        trainer.save_checkpoint(Path(settings.run_dir) / "checkpoints" / LAST, weights_only=False)
    return trainer
