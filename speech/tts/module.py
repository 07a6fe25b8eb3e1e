"""LightningModule for the flow-matching acoustic model: flow loss, optimisation, logging and export.

Public API::

    FlowTTSModule(net=flow_tts_tiny(), units=[...], langs=[...], mel_mean=..., mel_std=...)  # from model_kwargs()
    module.inputs(batch) -> (x1, frame_mask, units_aligned)   # normalised frames and per-frame unit ids
    module.export(out_dir)                                    # a tts_flow model directory (speech.tts.hub)
    FlowTTSModule.evaluate(cfg, ckpt)                         # held-out flow loss (common.evaluation.Evaluable)

Logs ``train/loss``; ``val/loss`` and ``test/loss`` are the flow loss with noise, flow steps, spans and guidance
drops drawn from a generator seeded with ``val_seed`` at the start of each epoch, so they are comparable between
epochs and runs. With ``val_sample_nfe`` > 0 the first validation utterance is also generated from its first 30%
as prompt, and ``val/sample_mse`` is the normalised-mel error of the generated frames.
"""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor

from common.optim import adamw_warmup_cosine, decay_groups
from speech.tts.config import FlowTTSConfig, flow_tts_config
from speech.tts.flow import flow_loss, masked_mse, solve
from speech.tts.hub import save_pretrained
from speech.tts.model import FlowTTS, expand_units
from speech.tts.vocab import UnitVocab


def _as_dict(x: Any) -> dict[str, Any]:
    d = asdict(x) if is_dataclass(x) and not isinstance(x, type) else dict(x or {})
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}  # plain YAML/JSON in hparams


class FlowTTSModule(L.LightningModule):
    """Trains a ``FlowTTS`` with conditional flow matching on span-masked utterances (Voicebox).

    ``net`` gives the architecture; the vocabulary size and the mel statistics come from the data
    (``TTSDataModule.model_kwargs``) and overwrite what ``net`` says.
    """

    def __init__(
        self,
        net: FlowTTSConfig | dict[str, Any],
        units: UnitVocab | list[str],
        langs: list[str] | None = None,
        mel_mean: float | None = None,
        mel_std: float | None = None,
        lr: float = 1e-3,
        weight_decay: float = 1e-2,
        betas: tuple[float, float] = (0.9, 0.98),
        warmup_steps: int = 500,
        min_lr_ratio: float = 0.05,
        val_seed: int = 1234,
        val_sample_nfe: int = 0,
    ):
        super().__init__()
        vocab = units if isinstance(units, UnitVocab) else UnitVocab(list(units))
        cfg = _as_dict(net)
        cfg["vocab_size"] = len(vocab)
        if mel_mean is not None:
            cfg["mel_mean"] = float(mel_mean)
        if mel_std is not None:
            cfg["mel_std"] = float(mel_std)
        self.save_hyperparameters({
            "net": cfg, "units": vocab.units, "langs": list(langs or []), "lr": lr, "weight_decay": weight_decay,
            "betas": list(betas), "warmup_steps": warmup_steps, "min_lr_ratio": min_lr_ratio, "val_seed": val_seed,
            "val_sample_nfe": val_sample_nfe,
        })
        self.vocab = vocab
        self.net = FlowTTS(flow_tts_config(cfg))
        self._eval_gen: torch.Generator | None = None

    def inputs(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor, Tensor]:
        """Normalised frames [B, T, n_mels], the frame mask [B, T] and per-frame unit ids [B, T] of a batch."""
        mel, frame_mask, durations = batch["mel"], batch["frame_mask"], batch["durations"]
        ids = torch.zeros_like(durations)
        for i, units in enumerate(batch["units"]):
            ids[i, : len(units)] = torch.tensor(self.vocab.encode(units), dtype=torch.long)
        aligned = expand_units(ids, durations, mel.shape[1])
        return self.net.normalize(mel) * frame_mask[..., None], frame_mask, aligned

    def training_step(self, batch: dict[str, Any] | None, batch_idx: int) -> Tensor | None:
        if batch is None:  # every item of the batch was unreadable
            return None
        x1, frame_mask, aligned = self.inputs(batch)
        loss = flow_loss(self.net, x1, frame_mask, aligned, self.net.cfg)
        self.log("train/loss", loss, prog_bar=True, batch_size=x1.shape[0])
        self.log("train/frames", frame_mask.sum().float(), reduce_fx="sum", on_step=False, on_epoch=True,
                 batch_size=x1.shape[0])
        return loss

    def _start_eval(self) -> None:
        self._eval_gen = torch.Generator(device=self.device).manual_seed(int(self.hparams["val_seed"]))

    def _eval_step(self, batch: dict[str, Any] | None, batch_idx: int, stage: str) -> None:
        if batch is None:
            return
        x1, frame_mask, aligned = self.inputs(batch)
        loss = flow_loss(self.net, x1, frame_mask, aligned, self.net.cfg, generator=self._eval_gen)
        # Weighted by frames, so the epoch mean is close to the per-frame loss of the split.
        self.log(f"{stage}/loss", loss, prog_bar=stage == "val", batch_size=int(frame_mask.sum()), sync_dist=True)
        nfe = int(self.hparams["val_sample_nfe"])
        if stage == "val" and batch_idx == 0 and nfe > 0:
            self.log("val/sample_mse", self.sample_error(x1[:1], frame_mask[:1], aligned[:1], nfe), batch_size=1)

    def sample_error(self, x1: Tensor, frame_mask: Tensor, aligned: Tensor, nfe: int) -> Tensor:
        """Normalised-mel MSE of frames generated after a 30% prompt of the utterance (seeded, guidance 1)."""
        lens = frame_mask.sum(-1, keepdim=True)
        prompt = torch.arange(x1.shape[1], device=x1.device)[None] < (0.3 * lens)
        gen = torch.Generator(device=self.device).manual_seed(int(self.hparams["val_seed"]))
        out = solve(self.net, x1, prompt, aligned, frame_mask, nfe=nfe, guidance=1.0, generator=gen)
        return masked_mse(out, x1, frame_mask & ~prompt)

    def on_validation_epoch_start(self) -> None:
        self._start_eval()

    def on_test_epoch_start(self) -> None:
        self._start_eval()

    def validation_step(self, batch: dict[str, Any] | None, batch_idx: int) -> None:
        self._eval_step(batch, batch_idx, "val")

    def test_step(self, batch: dict[str, Any] | None, batch_idx: int) -> None:
        self._eval_step(batch, batch_idx, "test")

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        return adamw_warmup_cosine(self, decay_groups(self.net.named_parameters(), hp["weight_decay"]), hp["lr"],
                                   hp["betas"], hp["warmup_steps"], hp["min_lr_ratio"])

    def export(self, out_dir: str | Path) -> Path:
        """Write ``config.json`` + ``model.safetensors`` + ``units.json`` for ``speech.tts.hub.from_pretrained``."""
        return save_pretrained(self.net, self.vocab, out_dir, langs=self.hparams["langs"])

    @classmethod
    def evaluate(cls, cfg: Any, ckpt: str) -> dict[str, float]:
        """Held-out flow loss of a checkpoint on ``cfg.data``'s test split (common.evaluation.Evaluable)."""
        import hydra

        from common.evaluation import trainer_test

        model = cls.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True)
        datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
        return trainer_test(cfg, model, datamodule, ckpt)
