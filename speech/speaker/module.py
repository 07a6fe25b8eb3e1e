"""LightningModule for speaker-encoder training: AAM-softmax over the training speakers, verification EER on held-out
speakers (dev for validation, test for ``evaluate``)."""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.distributed as dist
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from common.optim import adamw_warmup_cosine, decay_groups
from speech.speaker.config import EcapaConfig
from speech.speaker.hub import load_encoder, save_pretrained
from speech.speaker.loss import AAMSoftmax
from speech.speaker.model import SpeakerEncoder
from speech.speaker.similarity import cosine, reference_trials
from speech.speaker.verify import all_pairs, verification_metrics

log = logging.getLogger(__name__)
NO_TRIALS_EER = 1.0
"""Logged as the EER when the split cannot form both kinds of trial, so such a validation never looks best."""


def reference_similarity(emb: Tensor, speakers: list[str], langs: list[str], per_speaker: int = 5) -> dict[str, float]:
    """Mean cosine of prompt <-> another recording of its speaker (``sim_ceiling``) and <-> another speaker of its
    language (``sim_floor``): the scale that a TTS similarity figure is read against (speech.speaker.similarity)."""
    trials = reference_trials([{"speaker": s, "lang": x} for s, x in zip(speakers, langs)], per_speaker)
    if not trials:
        return {}
    idx = torch.tensor([[t.prompt, t.same, t.other] for t in trials])
    return {"sim_ceiling": float(cosine(emb[idx[:, 0]], emb[idx[:, 1]]).mean()),
            "sim_floor": float(cosine(emb[idx[:, 0]], emb[idx[:, 2]]).mean())}


class SpeakerEncoderModule(L.LightningModule):
    """Trains a ``SpeakerEncoder`` (ECAPA-TDNN) with AAM-softmax; validates by speaker verification on new voices.

    The margin grows linearly from 0 over ``margin_warmup_steps``: with the full margin from the first step, the
    untrained embeddings of a small run sit past the margin and the loss barely moves.
    """

    def __init__(
        self,
        encoder: EcapaConfig | dict[str, Any],
        speakers: list[str],
        margin: float = 0.2,
        scale: float = 30.0,
        margin_warmup_steps: int = 500,
        lr: float = 2e-3,
        weight_decay: float = 2e-5,
        betas: tuple[float, float] = (0.9, 0.98),
        warmup_steps: int = 100,
        min_lr_ratio: float = 0.02,
        max_trials: int = 500_000,
    ):
        super().__init__()
        enc = asdict(encoder) if isinstance(encoder, EcapaConfig) else dict(encoder)
        if not speakers:
            raise ValueError("no training speakers: the training manifest needs a 'speaker' field")
        self.save_hyperparameters({  # plain lists and dicts, so checkpoints load with weights_only=True
            "encoder": {k: list(v) if isinstance(v, tuple) else v for k, v in enc.items()},
            "speakers": list(speakers), "margin": margin, "scale": scale, "margin_warmup_steps": margin_warmup_steps,
            "lr": lr, "weight_decay": weight_decay, "betas": list(betas), "warmup_steps": warmup_steps,
            "min_lr_ratio": min_lr_ratio, "max_trials": max_trials,
        })
        self.net = SpeakerEncoder(EcapaConfig(**self.hparams["encoder"]))
        self.head = AAMSoftmax(self.net.cfg.embed_dim, len(speakers), margin, scale)
        self._eval: list[tuple[Tensor, list[str], list[str], list[str]]] = []

    def current_margin(self) -> float:
        warm = self.hparams["margin_warmup_steps"]
        return self.hparams["margin"] * min(1.0, self.global_step / warm) if warm > 0 else self.hparams["margin"]

    def training_step(self, batch: dict[str, Any] | None, batch_idx: int) -> Tensor | None:
        if batch is None:  # every item of the batch was unreadable
            return None
        emb = self.net(batch["wave"], batch["wave_lens"])  # [B, D]
        margin = self.current_margin()
        loss = self.head(emb, batch["labels"], margin)
        bs = emb.shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=bs)
        with torch.no_grad():
            acc = (self.head.cosine(emb).argmax(1) == batch["labels"]).float().mean()
        self.log("train/acc", acc, prog_bar=True, batch_size=bs)
        self.log("train/margin", margin, batch_size=bs)
        return loss

    def _eval_step(self, batch: dict[str, Any] | None) -> None:
        if batch is not None:
            emb = self.net(batch["wave"], batch["wave_lens"]).float().cpu()
            self._eval.append((emb, batch["speakers"], batch["langs"], batch["audio"]))

    def validation_step(self, batch: dict[str, Any] | None, batch_idx: int) -> None:
        self._eval_step(batch)

    def test_step(self, batch: dict[str, Any] | None, batch_idx: int) -> None:
        self._eval_step(batch)

    def _gathered(self) -> tuple[Tensor, list[str], list[str]]:
        """This epoch's embeddings, speakers and languages from every rank."""
        parts = self._eval
        self._eval = []
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            everyone: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(everyone, parts)
            parts = [p for rank in everyone for p in rank]
        # Under DDP the last batches repeat on some ranks to even them out: one trial set per utterance.
        seen: dict[str, tuple[Tensor, str, str]] = {}
        for emb, speakers, langs, audio in parts:
            for row in zip(audio, emb, speakers, langs):
                seen.setdefault(row[0], row[1:])
        if not seen:
            return torch.zeros(0, self.net.cfg.embed_dim), [], []
        rows = list(seen.values())
        return torch.stack([e for e, _, _ in rows]), [s for _, s, _ in rows], [x for _, _, x in rows]

    def _log_verification(self, stage: str) -> dict[str, float]:
        emb, speakers, langs = self._gathered()
        metrics = verification_metrics(all_pairs(emb, speakers, langs, self.hparams["max_trials"]))
        if "eer" not in metrics:
            log.warning("%s: %d utterances of %d speakers cannot form both same- and different-speaker trials; "
                        "%s/eer logged as %.1f", stage, len(speakers), len(set(speakers)), stage, NO_TRIALS_EER)
            metrics["eer"] = NO_TRIALS_EER
        metrics["speakers"] = float(len(set(speakers)))
        if stage == "test" and len(set(speakers)) > 1:
            metrics.update(reference_similarity(emb, speakers, langs))
        for name, value in metrics.items():
            # Every rank gathered the same trials, so each logs the same value (the monitor needs it everywhere).
            self.log(f"{stage}/{name}", value, prog_bar=name == "eer")
        return metrics

    def on_validation_epoch_end(self) -> None:
        self._log_verification("val")

    def on_test_epoch_end(self) -> None:
        m = self._log_verification("test")
        rank_zero_info("\ntest speaker verification: " + ", ".join(f"{k} {v:.4g}" for k, v in m.items()))

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        return adamw_warmup_cosine(self, decay_groups(self.named_parameters(), hp["weight_decay"]), hp["lr"],
                                   hp["betas"], hp["warmup_steps"], hp["min_lr_ratio"])

    def export(self, out_dir: str | Path) -> Path:
        """Write ``config.json`` + ``model.safetensors`` for ``SpeakerEncoder.from_pretrained`` (no AAM head)."""
        return save_pretrained(self.net, out_dir, train_speakers=len(self.hparams["speakers"]))

    @classmethod
    def evaluate(cls, cfg: Any, ckpt: str) -> dict[str, float]:
        """Verification EER and minDCF on ``cfg.data``'s test split, all pairs of its utterances
        (common.evaluation.Evaluable). ``ckpt`` is a training checkpoint or an exported model directory."""
        import hydra

        from common.evaluation import trainer_test

        if Path(ckpt).is_dir():
            net = load_encoder(ckpt)
            model = cls(asdict(net.cfg), ["?"], max_trials=cfg.model.get("max_trials", 500_000))
            model.net.load_state_dict(net.state_dict())
        else:
            model = cls.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True)
        datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
        return trainer_test(cfg, model, datamodule, ckpt)
