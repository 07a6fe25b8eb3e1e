"""LightningModule of the duration model: span-masked L1 on log(1 + frames), MAE in frames, export through the hub.

    DurationModule(net=duration_tiny(), units=[...], langs=[...])   # units and langs from DurationDataModule

Batches (``datamodules.tts_duration.collate_durations``): ``units`` list[list[str]], ``durations`` [B, N] long
(0 on padding), ``langs`` list[str]. The module owns the unit vocabulary and the language ids.
"""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor

from common.optim import adamw_warmup_cosine, decay_groups
from speech.tts.duration import DurationConfig, DurationModel, duration_config, duration_loss, span_mask
from speech.tts.vocab import UnitVocab

VAL_SEED = 1234
"""Seed of the validation spans, so every validation scores the same masks."""


def _as_dict(x: Any) -> dict[str, Any]:
    return asdict(x) if is_dataclass(x) and not isinstance(x, type) else dict(x or {})


class DurationModule(L.LightningModule):
    """Trains ``DurationModel`` (Voicebox's duration model): a 10-100% span of each utterance's units is predicted
    from the rest."""

    def __init__(
        self,
        net: DurationConfig | dict[str, Any],
        units: UnitVocab | list[str],
        langs: list[str] | None = None,
        mask_frac: tuple[float, float] = (0.1, 1.0),
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        warmup_steps: int = 200,
        min_lr_ratio: float = 0.05,
    ):
        super().__init__()
        self.vocab = units if isinstance(units, UnitVocab) else UnitVocab(list(units))
        langs = list(langs or [])
        cfg = {**_as_dict(net), "vocab_size": len(self.vocab), "num_langs": len(langs) + 1}
        self.save_hyperparameters({
            "net": cfg, "units": self.vocab.units, "langs": langs, "mask_frac": [float(f) for f in mask_frac],
            "lr": lr, "weight_decay": weight_decay, "warmup_steps": warmup_steps, "min_lr_ratio": min_lr_ratio,
        })
        self.net = DurationModel(duration_config(cfg))
        self.lang_ids = {lang: i + 1 for i, lang in enumerate(langs)}  # 0: a language not seen in training

    def inputs(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Unit ids [B, N], language ids [B], durations [B, N] and the real-unit mask [B, N] of a batch."""
        durs = batch["durations"].to(self.device)
        ids = torch.zeros(durs.shape, dtype=torch.long)
        for b, units in enumerate(batch["units"]):
            ids[b, : len(units)] = torch.tensor(self.vocab.encode(units))
        langs = torch.tensor([self.lang_ids.get(lang, 0) for lang in batch["langs"]], dtype=torch.long)
        ids = ids.to(self.device)
        return ids, langs.to(self.device), durs, ids != 0

    def step(self, batch: dict[str, Any], predict: Tensor | None = None,
             generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Loss, predictions [B, N], durations [B, N] and the predicted units [B, N] (a random span unless given)."""
        ids, langs, durs, unit_mask = self.inputs(batch)
        if predict is None:
            lo, hi = self.hparams["mask_frac"]
            predict = span_mask(unit_mask, lo, hi, generator)
        predict = predict & unit_mask
        pred = self.net(ids, langs, torch.log1p(durs.float()), ~predict, unit_mask)
        return duration_loss(pred, durs, predict, unit_mask), pred, durs, predict

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        loss, *_ = self.step(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["units"]))
        return loss

    def _eval_step(self, stage: str, batch: dict[str, Any], batch_idx: int) -> None:
        gen = torch.Generator().manual_seed(VAL_SEED + batch_idx)
        loss, pred, durs, predict = self.step(batch, generator=gen)
        n = int(predict.sum())
        self.log(f"{stage}/l1", loss, prog_bar=True, batch_size=n, sync_dist=True)
        self.log(f"{stage}/mae", frame_error(pred, durs, predict), batch_size=n, sync_dist=True)
        # No prompt at all: the whole utterance predicted from its units (plain TTS).
        _, pred_all, _, everything = self.step(batch, predict=torch.ones_like(predict))
        self.log(f"{stage}/mae_no_prompt", frame_error(pred_all, durs, everything), batch_size=int(everything.sum()),
                 sync_dist=True)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step("val", batch, batch_idx)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step("test", batch, batch_idx)

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        return adamw_warmup_cosine(self, decay_groups(self.named_parameters(), hp["weight_decay"]), hp["lr"],
                                   (0.9, 0.98), hp["warmup_steps"], hp["min_lr_ratio"])

    def export(self, out_dir: str | Path) -> Path:
        """``config.json`` + ``model.safetensors`` + ``units.json`` (model_type ``tts_duration``)."""
        from speech.tts.duration_hub import save_pretrained

        return save_pretrained(self.net, self.vocab, out_dir, langs=self.hparams["langs"])

    @classmethod
    def evaluate(cls, cfg: Any, ckpt: str) -> dict[str, float]:
        """L1 and MAE in frames of a checkpoint on ``cfg.data``'s test split (common.evaluation.Evaluable)."""
        import hydra

        from common.evaluation import trainer_test

        model = cls.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True)
        return trainer_test(cfg, model, hydra.utils.instantiate(cfg.data, _convert_="all"), ckpt)


def frame_error(pred: Tensor, durs: Tensor, predict: Tensor) -> Tensor:
    """Mean absolute error in whole frames over the predicted units."""
    frames = torch.expm1(pred.float()).clamp_min(0).round()
    return ((frames - durs.float()).abs() * predict).sum() / predict.sum().clamp_min(1)
