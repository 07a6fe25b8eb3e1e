"""LightningModule for CTC training: loss, optimisation, per-language CER/WER and export."""

from __future__ import annotations

import math
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Timer
from lightning.pytorch.utilities import rank_zero_info

from common.metrics import LanguageErrorRates, format_table
from speech.asr.config import CTCModelConfig, SpecAugmentConfig
from speech.asr.hub import load_encoder_weights, save_pretrained
from speech.asr.infer import greedy_decode
from speech.asr.model import CTCModel
from speech.encoders.conformer import ConformerConfig
from speech.encoders.wav2vec2 import Wav2Vec2Config, Wav2Vec2Encoder
from text.char_vocab import CharVocab


def _as_dict(x: Any) -> dict[str, Any]:
    d = asdict(x) if is_dataclass(x) and not isinstance(x, type) else dict(x or {})
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}  # plain YAML/JSON in hparams


def warmup_cosine(step: int, warmup: int, total: int, floor: float, time_progress: float = 0.0) -> float:
    """LR multiplier: linear warm-up, then cosine decay to ``floor``.

    The decay follows whichever budget runs out first: steps, or wall time (``time_progress``,
    the used share of ``trainer.max_time``), so a time-capped run still ends at a low LR.
    """
    if step < warmup:
        return (step + 1) / max(warmup, 1)
    progress = min(1.0, max((step - warmup) / max(total - warmup, 1), time_progress))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


class ASRModule(L.LightningModule):
    """Trains a ``CTCModel`` on a character vocabulary built from the training manifest.

    ``encoder_type`` ("conformer" or "wav2vec2") says which architecture ``encoder`` describes.
    ``init_encoder``: a transformers wav2vec2 directory (XLS-R, MMS ...) or a suite model directory
    whose encoder weights start training; ``encoder`` must name the same shape (e.g. ``xlsr_300m``).
    """

    def __init__(
        self,
        encoder: ConformerConfig | Wav2Vec2Config | dict[str, Any],
        vocab: CharVocab | list[str],
        langs: list[str] | None = None,
        specaug: SpecAugmentConfig | dict[str, Any] | None = None,
        lr: float = 2e-3,
        weight_decay: float = 1e-2,
        betas: tuple[float, float] = (0.9, 0.98),
        warmup_steps: int = 300,
        min_lr_ratio: float = 0.05,
        lang_chars: dict[str, str] | None = None,
        encoder_type: str = "conformer",
        init_encoder: str | None = None,
        freeze_feature_extractor: bool = False,
    ):
        super().__init__()
        tokens = vocab.tokens if isinstance(vocab, CharVocab) else list(vocab)
        lang_chars = vocab.lang_chars if isinstance(vocab, CharVocab) else dict(lang_chars or {})
        self.save_hyperparameters({
            "encoder": _as_dict(encoder), "specaug": _as_dict(specaug), "vocab": tokens, "lang_chars": lang_chars,
            "langs": list(langs or []), "lr": lr, "weight_decay": weight_decay, "betas": list(betas),
            "warmup_steps": warmup_steps, "min_lr_ratio": min_lr_ratio, "encoder_type": encoder_type,
            "init_encoder": init_encoder, "freeze_feature_extractor": freeze_feature_extractor,
        })
        self.vocab = CharVocab(tokens[3:], lang_chars)
        cfg = CTCModelConfig(
            vocab_size=len(self.vocab),
            encoder=dict(self.hparams["encoder"]),  # type: ignore[arg-type]  # built by encoder_type
            specaug=SpecAugmentConfig(**self.hparams["specaug"]),
            encoder_type=encoder_type,
        )
        self.net = CTCModel(cfg)
        if init_encoder:
            load_encoder_weights(self.net, init_encoder)
        if freeze_feature_extractor:
            if not isinstance(self.net.encoder, Wav2Vec2Encoder):
                raise ValueError("freeze_feature_extractor needs encoder_type=wav2vec2")
            self.net.encoder.feature_extractor.requires_grad_(False)
        self.val_rates = LanguageErrorRates(self.hparams["langs"])
        self.test_rates = LanguageErrorRates(self.hparams["langs"])

    def _loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logp, lens = self.net(batch["wave"], batch["wave_lens"])  # [B, T, V]
        loss = F.ctc_loss(
            logp.transpose(0, 1), batch["targets"], lens, batch["target_lens"],
            blank=self.vocab.blank_id, reduction="mean", zero_infinity=True,
        )
        return loss, logp, lens

    def training_step(self, batch: dict[str, Any] | None, batch_idx: int) -> torch.Tensor | None:
        if batch is None:  # every item of the batch was unreadable
            return None
        loss, _, _ = self._loss(batch)
        bs = batch["wave"].shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=bs)
        self.log("train/audio_seconds", batch["seconds"], reduce_fx="sum", on_step=False, on_epoch=True,
                 batch_size=bs)
        return loss

    def _eval_step(self, batch: dict[str, Any] | None, rates: LanguageErrorRates, stage: str) -> None:
        if batch is None:
            return
        loss, logp, lens = self._loss(batch)
        self.log(f"{stage}/loss", loss, prog_bar=stage == "val", batch_size=batch["wave"].shape[0], sync_dist=True)
        rates.update(greedy_decode(logp, lens, self.vocab, batch["langs"]), batch["texts"], batch["langs"])

    def validation_step(self, batch: dict[str, Any] | None, batch_idx: int) -> None:
        self._eval_step(batch, self.val_rates, "val")

    def test_step(self, batch: dict[str, Any] | None, batch_idx: int) -> None:
        self._eval_step(batch, self.test_rates, "test")

    def _log_rates(self, rates: LanguageErrorRates, stage: str) -> dict[str, dict[str, float]]:
        summary = rates.compute()
        rates.reset()
        for lang, m in summary.items():
            name = stage if lang == "all" else f"{stage}_{lang}"
            self.log(f"{name}/cer", m["cer"], prog_bar=lang == "all", rank_zero_only=True)
            self.log(f"{name}/wer", m["wer"], rank_zero_only=True)
        return summary

    def on_validation_epoch_end(self) -> None:
        summary = self._log_rates(self.val_rates, "val")
        if not self.trainer.sanity_checking:
            rank_zero_info(f"\nvalidation, epoch {self.current_epoch}:\n{format_table(summary)}")

    def on_test_epoch_end(self) -> None:
        summary = self._log_rates(self.test_rates, "test")
        rank_zero_info(f"\ntest:\n{format_table(summary)}")

    def configure_optimizers(self) -> Any:
        decay = [p for n, p in self.named_parameters() if p.ndim >= 2]
        no_decay = [p for n, p in self.named_parameters() if p.ndim < 2]
        opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": self.hparams["weight_decay"]},
             {"params": no_decay, "weight_decay": 0.0}],
            lr=self.hparams["lr"], betas=tuple(self.hparams["betas"]),
        )
        total = int(self.trainer.estimated_stepping_batches)
        warmup, floor = self.hparams["warmup_steps"], self.hparams["min_lr_ratio"]
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: warmup_cosine(s, warmup, total, floor, self._time_progress())
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def _time_progress(self) -> float:
        """Share of ``trainer.max_time`` used so far (0 when there is no time budget)."""
        timer = next((c for c in self.trainer.callbacks if isinstance(c, Timer)), None) if self._trainer else None  # type: ignore[attr-defined]
        if timer is None:
            return 0.0
        elapsed = timer.time_elapsed("train")
        remaining = timer.time_remaining("train")
        if remaining is None:
            return 0.0
        progress = elapsed / max(elapsed + remaining, 1e-9)
        # Every rank must apply the same LR, so rank 0's clock decides.
        return float(self.trainer.strategy.broadcast(progress)) if self.trainer.world_size > 1 else progress

    def export(self, out_dir: str | Path) -> Path:
        """Write ``config.json`` + ``model.safetensors`` + ``vocab.json`` for ``from_pretrained``."""
        return save_pretrained(self.net, self.vocab, out_dir, langs=self.hparams["langs"])
