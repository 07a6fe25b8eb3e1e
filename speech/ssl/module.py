"""LightningModule for wav2vec 2.0 pretraining: objective, temperature annealing, optimisation, logs and export."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import lightning as L
import torch

from common import hub
from common.optim import adamw_warmup_cosine, decay_groups
from speech.encoders.wav2vec2 import Wav2Vec2Config
from speech.ssl.config import SSLObjectiveConfig
from speech.ssl.hub import load_heads, read_pretrained, save_pretrained
from speech.ssl.model import SSLOutput, Wav2Vec2SSL

log = logging.getLogger(__name__)
COLLAPSE_STEPS = 20
"""Consecutive training steps with one code per codebook after which the run is reported as collapsed."""


def load_init_encoder(net: Wav2Vec2SSL, path: str | Path) -> None:
    """Start from the encoder of a transformers wav2vec2 directory (pretraining heads too when it has them)
    or of a suite CTC model directory; the shapes must match the configured encoder (dropout aside)."""
    d = Path(path)
    meta = json.loads((d / "config.json").read_text(encoding="utf-8")) if (d / "config.json").is_file() else {}
    heads: dict[str, torch.Tensor] = {}
    src_cfg: Any
    kind = meta.get("model_type")
    if kind == "wav2vec2":
        src_cfg, state, heads = read_pretrained(d)
    elif kind in hub.MODEL_TYPES:
        # Any suite model with a speech encoder (a CTC recogniser, say), rebuilt by the hub without naming its family.
        source: Any = hub.load_pretrained(d).model
        src_cfg = getattr(getattr(source, "cfg", None), "encoder", None)
        if src_cfg is None or not isinstance(getattr(source, "encoder", None), torch.nn.Module):
            raise ValueError(f"{d}: a {kind} model has no speech encoder to start from")
        state = source.encoder.state_dict()
    else:
        raise ValueError(f"{d}: neither a transformers wav2vec2 directory nor a suite CTC model directory")
    if not isinstance(src_cfg, Wav2Vec2Config):
        raise ValueError(f"{d}: its encoder is a {type(src_cfg).__name__}, not a Wav2Vec2Config")
    ours, theirs = asdict(net.cfg), asdict(src_cfg)
    diff = {k: (ours[k], theirs[k]) for k in ours if k not in ("dropout", "attention_dropout") and ours[k] != theirs[k]}
    if diff:
        raise ValueError(f"{d}: encoder shape differs from the configured one (ours, theirs): {diff}")
    net.encoder.load_state_dict(state)
    if heads and meta.get("ssl_objective") == asdict(net.objective):
        load_heads(net, heads, d)


class SSLModule(L.LightningModule):
    """Self-supervised (continued) pretraining of a wav2vec2 encoder on unlabelled audio.

    ``init_encoder`` continues from a pretrained encoder (an exported run, XLS-R/MMS in transformers
    layout, or a suite CTC model); ``export`` writes what ASR fine-tuning reads as ``model.init_encoder``.
    """

    def __init__(
        self,
        encoder: Wav2Vec2Config | dict[str, Any],
        objective: SSLObjectiveConfig | dict[str, Any] | None = None,
        lr: float = 5e-4,
        weight_decay: float = 1e-2,
        betas: tuple[float, float] = (0.9, 0.98),
        warmup_steps: int = 500,
        min_lr_ratio: float = 0.05,
        init_encoder: str | None = None,
    ):
        super().__init__()
        enc = asdict(encoder) if isinstance(encoder, Wav2Vec2Config) else dict(encoder)
        obj = asdict(objective) if isinstance(objective, SSLObjectiveConfig) else dict(objective or {})
        self.save_hyperparameters({  # plain lists and dicts, so checkpoints load with weights_only=True
            "encoder": {k: list(v) if isinstance(v, tuple) else v for k, v in enc.items()}, "objective": obj, "lr": lr,
            "weight_decay": weight_decay, "betas": list(betas), "warmup_steps": warmup_steps,
            "min_lr_ratio": min_lr_ratio, "init_encoder": init_encoder,
        })
        self.objective = SSLObjectiveConfig(**self.hparams["objective"])
        self.net = Wav2Vec2SSL(Wav2Vec2Config(**self.hparams["encoder"]), self.objective)
        if init_encoder:
            load_init_encoder(self.net, init_encoder)
        self._collapsed_steps = 0

    def watch_codebooks(self, code_perplexity: float) -> bool:
        """Warn once when every codebook has used a single entry for ``COLLAPSE_STEPS`` steps in a row.

        A collapsed quantizer gives every frame the same target, so the contrastive loss sits at ln(K + 1)
        with no gradient to leave it: the run is lost. Returns True on the step that warns.
        """
        groups = self.objective.num_groups
        self._collapsed_steps = self._collapsed_steps + 1 if code_perplexity < groups + 0.5 else 0
        if self._collapsed_steps != COLLAPSE_STEPS:
            return False
        log.warning("step %d: the quantizer has collapsed (code perplexity %.2f: one entry in each of its %d "
                    "codebooks for %d steps); the contrastive loss cannot leave chance. Restart with a lower "
                    "model.lr (wav2vec2_tiny on the generated corpus collapsed within 25 steps at 2e-3, "
                    "not at 5e-4).", self.global_step, code_perplexity, groups, COLLAPSE_STEPS)
        return True

    def _log_output(self, out: SSLOutput, stage: str, batch_size: int) -> None:
        on_step = stage == "train"
        values = {"loss": out.loss, "contrastive": out.contrastive, "accuracy": out.accuracy,
                  "code_perplexity": out.code_perplexity, "prob_perplexity": out.prob_perplexity,
                  "diversity": out.diversity, "feature_penalty": out.feature_penalty}
        for name, v in values.items():
            self.log(f"{stage}/{name}", v, prog_bar=name in ("loss", "accuracy"), batch_size=batch_size,
                     on_step=on_step, on_epoch=not on_step, sync_dist=not on_step)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self.net.temperature = self.objective.temperature(self.global_step)

    def training_step(self, batch: dict[str, Any] | None, batch_idx: int) -> torch.Tensor | None:
        if batch is None:  # every item of the batch was unreadable
            return None
        out = self.net(batch["wave"], batch["wave_lens"])
        bs = batch["wave"].shape[0]
        self._log_output(out, "train", bs)
        self.log("train/temperature", self.net.temperature, batch_size=bs)
        self.watch_codebooks(float(out.code_perplexity))
        self.log("train/audio_seconds", batch["seconds"], reduce_fx="sum", on_step=False, on_epoch=True,
                 batch_size=bs)
        return out.loss

    def _eval_step(self, batch: dict[str, Any] | None, batch_idx: int, stage: str) -> None:
        if batch is None:
            return
        # The same masks and distractors for a batch at every validation, so the curve is comparable.
        gen = torch.Generator().manual_seed(batch_idx)
        self._log_output(self.net(batch["wave"], batch["wave_lens"], generator=gen), stage, batch["wave"].shape[0])

    def validation_step(self, batch: dict[str, Any] | None, batch_idx: int) -> None:
        self._eval_step(batch, batch_idx, "val")

    def test_step(self, batch: dict[str, Any] | None, batch_idx: int) -> None:
        self._eval_step(batch, batch_idx, "test")

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        return adamw_warmup_cosine(self, decay_groups(self.named_parameters(), hp["weight_decay"]), hp["lr"],
                                   hp["betas"], hp["warmup_steps"], hp["min_lr_ratio"])

    def export(self, out_dir: str | Path) -> Path:
        """Write a transformers-layout wav2vec2 directory: ``model.init_encoder=<dir>`` for ASR fine-tuning."""
        return save_pretrained(self.net, out_dir)

    @classmethod
    def evaluate(cls, cfg: Any, ckpt: str) -> dict[str, float]:
        """Not evaluable on its own: a pretrained encoder is judged by the ASR model fine-tuned from it."""
        raise SystemExit(f"{ckpt}: scripts/eval.py has no evaluation of an SSL checkpoint; fine-tune an ASR model from"
                         " its export (python scripts/train.py model=asr_wav2vec2_tiny model.init_encoder=<run>/model)"
                         " and evaluate that")
