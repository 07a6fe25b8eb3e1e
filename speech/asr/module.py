"""LightningModule for CTC training: loss, optimisation, per-language CER/WER and export."""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from common.metrics import LanguageErrorRates, log_error_rates
from common.optim import adamw_warmup_cosine, decay_groups
from speech.asr.config import CTCModelConfig, SpecAugmentConfig
from speech.asr.ctc import greedy_decode
from speech.asr.hub import load_encoder_weights, load_model_weights, save_pretrained
from speech.asr.model import CTCModel
from speech.encoders.conformer import ConformerConfig, ConformerEncoder
from speech.encoders.wav2vec2 import Wav2Vec2Config, Wav2Vec2Encoder
from text.char_vocab import CharVocab


def _as_dict(x: Any) -> dict[str, Any]:
    d = asdict(x) if is_dataclass(x) and not isinstance(x, type) else dict(x or {})
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}  # plain YAML/JSON in hparams


class ASRModule(L.LightningModule):
    """Trains a ``CTCModel`` on a character vocabulary built from the training manifest.

    ``encoder_type`` ("conformer" or "wav2vec2") says which architecture ``encoder`` describes.
    ``init_encoder``: a transformers wav2vec2 directory (XLS-R, MMS ...) or a suite model directory
    whose encoder weights start training; ``encoder`` must name the same shape (e.g. ``xlsr_300m``).
    ``init_model``: a suite model directory with the same encoder and vocabulary whose whole network (encoder and
    CTC head) starts training: fine-tuning, e.g. on augmented data.
    ``specaug_from_epoch``: the conformer's SpecAugment (masks and tempo) only from that epoch on, so a model under
    a time budget leaves CTC's blank-only phase on clean features first.
    ``upsample_from_epoch``: with ``encoder.upsample`` above 1, the conformer's frames are split only from that epoch
    on (CTC leaves its blank-only phase far later on twice the frames); until then the split, which starts as a copy,
    is skipped in training.
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
        init_model: str | None = None,
        specaug_from_epoch: int = 0,
        upsample_from_epoch: int = 0,
    ):
        super().__init__()
        tokens = vocab.tokens if isinstance(vocab, CharVocab) else list(vocab)
        lang_chars = vocab.lang_chars if isinstance(vocab, CharVocab) else dict(lang_chars or {})
        self.save_hyperparameters({
            "encoder": _as_dict(encoder), "specaug": _as_dict(specaug), "vocab": tokens, "lang_chars": lang_chars,
            "langs": list(langs or []), "lr": lr, "weight_decay": weight_decay, "betas": list(betas),
            "warmup_steps": warmup_steps, "min_lr_ratio": min_lr_ratio, "encoder_type": encoder_type,
            "init_encoder": init_encoder, "freeze_feature_extractor": freeze_feature_extractor,
            "init_model": init_model, "specaug_from_epoch": specaug_from_epoch,
            "upsample_from_epoch": upsample_from_epoch,
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
        if init_model:
            load_model_weights(self.net, self.vocab, init_model)
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

    def on_train_epoch_start(self) -> None:
        if isinstance(self.net.encoder, ConformerEncoder):
            self.net.specaug.active = self.current_epoch >= self.hparams["specaug_from_epoch"]
            self.net.encoder.upsampling = self.current_epoch >= self.hparams["upsample_from_epoch"]

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

    def on_validation_epoch_end(self) -> None:
        log_error_rates(self, self.val_rates, "val")

    def on_test_epoch_end(self) -> None:
        log_error_rates(self, self.test_rates, "test")

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        return adamw_warmup_cosine(self, decay_groups(self.named_parameters(), hp["weight_decay"]), hp["lr"],
                                   hp["betas"], hp["warmup_steps"], hp["min_lr_ratio"])

    def export(self, out_dir: str | Path) -> Path:
        """Write ``config.json`` + ``model.safetensors`` + ``vocab.json`` for ``from_pretrained``."""
        return save_pretrained(self.net, self.vocab, out_dir, langs=self.hparams["langs"])

    @classmethod
    def evaluate(cls, cfg: Any, ckpt: str) -> dict[str, float]:
        """Per-language CER/WER of a checkpoint on ``cfg.data``'s test split (common.evaluation.Evaluable)."""
        import hydra

        from common.evaluation import trainer_test

        model = cls.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True)
        datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
        datamodule.set_vocab(model.vocab)  # the checkpoint's characters, not a vocabulary rebuilt from the data
        return trainer_test(cfg, model, datamodule, ckpt)
