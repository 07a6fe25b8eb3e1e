"""LightningModule for vocoder training: reconstruction losses, optional GAN, mel-L1 validation, hub export."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from torch import Tensor

from common import evaluation
from common.optim import adamw_warmup_cosine, decay_groups
from speech.vocoder.config import DiscriminatorConfig, VocosConfig
from speech.vocoder.discriminators import Discriminators
from speech.vocoder.hub import save_vocoder
from speech.vocoder.losses import (
    MultiResolutionSTFTLoss,
    discriminator_loss,
    feature_matching,
    generator_loss,
    mel_l1,
)
from speech.vocoder.mel import LogMelSpectrogram
from speech.vocoder.model import Vocoder


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    """Tuples to lists, recursively, so checkpoints load with ``weights_only=True``."""
    return {k: _plain(v) if isinstance(v, dict) else [list(x) if isinstance(x, tuple) else x for x in v]
            if isinstance(v, tuple | list) else v for k, v in d.items()}


class VocoderModule(L.LightningModule):
    """Trains a ``Vocoder`` to turn the log-mel of audio clips back into the clips.

    Always a mel L1 plus a multi-resolution STFT loss; with ``adversarial`` also multi-period and multi-resolution
    discriminators (hinge or least-squares) and feature matching, switched on after ``disc_warmup_steps``
    generator steps. Optimisation is manual so the GAN's two optimisers and the plain run share one step.
    """

    gen_steps: Tensor

    def __init__(
        self,
        vocoder: VocosConfig | dict[str, Any],
        adversarial: bool = False,
        discriminator: DiscriminatorConfig | dict[str, Any] | None = None,
        gan_loss: str = "hinge",
        disc_warmup_steps: int = 1000,
        lr: float = 5e-4,
        disc_lr: float | None = None,
        betas: tuple[float, float] = (0.8, 0.9),
        weight_decay: float = 0.01,
        warmup_steps: int = 200,
        min_lr_ratio: float = 0.05,
        mel_weight: float = 45.0,
        stft_weight: float = 45.0,
        adv_weight: float = 1.0,
        fm_weight: float = 2.0,
        grad_clip: float | None = 5.0,
    ):
        super().__init__()
        if gan_loss not in ("hinge", "lsgan"):
            raise ValueError(f"gan_loss must be 'hinge' or 'lsgan', got {gan_loss!r}")
        voc = asdict(vocoder) if isinstance(vocoder, VocosConfig) else dict(vocoder)
        disc = asdict(discriminator) if isinstance(discriminator, DiscriminatorConfig) else dict(discriminator or {})
        self.automatic_optimization = False
        self.save_hyperparameters(_plain({
            "vocoder": voc, "adversarial": adversarial, "discriminator": disc, "gan_loss": gan_loss,
            "disc_warmup_steps": disc_warmup_steps, "lr": lr, "disc_lr": disc_lr, "betas": betas,
            "weight_decay": weight_decay, "warmup_steps": warmup_steps, "min_lr_ratio": min_lr_ratio,
            "mel_weight": mel_weight, "stft_weight": stft_weight, "adv_weight": adv_weight, "fm_weight": fm_weight,
            "grad_clip": grad_clip,
        }))
        self.net = Vocoder(VocosConfig.from_dict(self.hparams["vocoder"]))
        self.mel = LogMelSpectrogram(self.net.cfg.mel)
        self.stft_loss = MultiResolutionSTFTLoss()
        self.disc = Discriminators(DiscriminatorConfig(**self.hparams["discriminator"])) if adversarial else None
        # Generator steps so far (the trainer's global_step counts both optimisers' steps in a GAN run).
        self.register_buffer("gen_steps", torch.zeros((), dtype=torch.long))

    def _step(self, opt: Any, sched: Any, loss: Tensor) -> None:
        opt.zero_grad()
        self.manual_backward(loss)
        if self.hparams["grad_clip"]:
            self.clip_gradients(opt, gradient_clip_val=self.hparams["grad_clip"], gradient_clip_algorithm="norm")
        opt.step()
        sched.step()

    def training_step(self, batch: dict[str, Any] | None, batch_idx: int) -> Tensor | None:
        if batch is None:  # every clip of the batch was unreadable
            return None
        hp, wave = self.hparams, batch["wave"]
        opts, scheds = self.optimizers(), self.lr_schedulers()
        opt_g, sched_g = (opts[0], scheds[0]) if isinstance(opts, list) else (opts, scheds)  # type: ignore[index]
        bs = wave.shape[0]
        mel = self.mel(wave)  # [B, T, M]
        pred = self.net(mel)  # [B, (T - 1) * hop]
        target = wave[:, : pred.shape[1]]
        target_mel = mel if target.shape[1] == wave.shape[1] else self.mel(target)
        gan = self.disc is not None and int(self.gen_steps) >= hp["disc_warmup_steps"]
        if gan:
            assert self.disc is not None
            real, _ = self.disc(target)
            fake, _ = self.disc(pred.detach())
            loss_d = discriminator_loss(real, fake, hp["gan_loss"])
            self._step(opts[1], scheds[1], loss_d)  # type: ignore[index]
            self.log("train/disc", loss_d, batch_size=bs)

        loss_mel = mel_l1(self.mel(pred), target_mel)
        loss_stft = self.stft_loss(pred, target)
        loss = hp["mel_weight"] * loss_mel + hp["stft_weight"] * loss_stft
        if gan:
            assert self.disc is not None
            fake, fake_feats = self.disc(pred)
            with torch.no_grad():
                _, real_feats = self.disc(target)
            loss_adv, loss_fm = generator_loss(fake, hp["gan_loss"]), feature_matching(real_feats, fake_feats)
            loss = loss + hp["adv_weight"] * loss_adv + hp["fm_weight"] * loss_fm
            self.log_dict({"train/adv": loss_adv, "train/fm": loss_fm}, batch_size=bs)
        self._step(opt_g, sched_g, loss)
        self.gen_steps += 1
        self.log_dict({"train/loss": loss, "train/mel_l1": loss_mel, "train/stft": loss_stft}, prog_bar=True,
                      batch_size=bs)
        self.log("train/audio_seconds", batch["seconds"], reduce_fx="sum", on_step=False, on_epoch=True,
                 batch_size=bs)
        return loss

    def _eval_step(self, batch: dict[str, Any] | None, stage: str) -> None:
        if batch is None:
            return
        wave = batch["wave"]
        mel = self.mel(wave)
        pred = self.net(mel)
        frames = batch["wave_lens"] // self.net.cfg.mel.hop + 1
        # Clips are whole hops long, so the output has every frame; padding past a clip's end is not scored.
        dist = mel_l1(self.mel(pred), mel if pred.shape[1] == wave.shape[1] else self.mel(wave[:, : pred.shape[1]]),
                      frames)
        self.log(f"{stage}/mel_l1", dist, prog_bar=True, batch_size=wave.shape[0], sync_dist=True)

    def validation_step(self, batch: dict[str, Any] | None, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Any] | None, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        gen = adamw_warmup_cosine(self, decay_groups(self.net.named_parameters(), hp["weight_decay"]), hp["lr"],
                                  hp["betas"], hp["warmup_steps"], hp["min_lr_ratio"])
        if self.disc is None:
            return gen
        disc = adamw_warmup_cosine(self, decay_groups(self.disc.named_parameters(), hp["weight_decay"]),
                                   hp["disc_lr"] or hp["lr"], hp["betas"], hp["warmup_steps"], hp["min_lr_ratio"])
        return [gen, disc]

    def export(self, out_dir: str | Path) -> Path:
        """Write the vocoder as a model directory (``speech.vocoder.hub.load_vocoder`` / ``make_vocoder`` read it)."""
        return save_vocoder(self.net, out_dir)

    @classmethod
    def evaluate(cls, cfg: Any, ckpt: str) -> dict[str, float]:
        """Mel L1 distance of resynthesised ``data.test_manifest`` clips (``test/mel_l1``); writes metrics.json."""
        module = cls.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True)
        datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
        return evaluation.trainer_test(cfg, module, datamodule, ckpt)
