"""Staged CLaMP 3 training.

``stage="symbolic"``: masked-patch prediction on ABC and MTF (alone for the first ``mlm_only_steps``), then with
InfoNCE between each score and one of its descriptions (a random language per tune and step). ``stage="audio"``:
starting from the symbolic stage's model (``init_encoder``), the symbolic branch and text tower frozen, InfoNCE
between recordings and descriptions; audio and sheet music are never paired, text bridges them. With
``pair_audio_symbolic`` the audio stage aligns recordings with their ABC directly instead (the comparison model).

Two things keep the model from learning shortcuts. ABC header lines that name the answer (``R:`` the dance type,
``%%MIDI program`` the instrument) are dropped from a training score with probability ``header_dropout``, so the
model must hear them in the notes too. And another tune of the batch that its description also fits (the
datamodule's ``fits``) is no negative: InfoNCE leaves it out of the softmax rather than push it away.
"""

from __future__ import annotations

import logging
import os
import random
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor

from common import hub
from common.losses import InfoNCELoss
from common.optim import adamw_warmup_cosine, decay_groups
from music.clamp.abc import LABEL_FIELDS
from music.clamp.config import ClampConfig
from music.clamp.evaluation import Collector, retrieval_metrics_by_lang
from music.clamp.inputs import MusicInputs
from music.clamp.model import MODEL_TYPE, ClampModel, masked_mean
from music.clamp.patches import PAD
from text.tokenizer import SentencePieceTokenizer

log = logging.getLogger(__name__)
STAGES = ("symbolic", "audio")


def description_texts(manifest: str) -> list[str]:
    """Every description (all languages) of a training manifest: what the description tokenizer is trained on."""
    from datamodules.music import read_rows

    return [t for row in read_rows(manifest, need=()) for t in row["texts"].values()]


class ClampModule(L.LightningModule):
    """Loss, optimisation and retrieval metrics of one training stage around a ``ClampModel``."""

    def __init__(self, net: ClampConfig | dict[str, Any], stage: str = "symbolic", tokenizer: str | None = None,
                 train_manifest: str | None = None, vocab_size: int = 4000, init_encoder: str | None = None,
                 pair_audio_symbolic: bool = False, audio_cache: str | None = None, mask_ratio: float = 0.15,
                 mlm_weight: float = 0.5, mlm_only_steps: int = 200, mlm_max_patches: int = 128,
                 temperature: float = 0.07, lr: float = 1e-3,
                 weight_decay: float = 0.01, betas: tuple[float, float] = (0.9, 0.98), warmup_steps: int = 100,
                 min_lr_ratio: float = 0.05, langs: list[str] | None = None,
                 zero_shot_templates: dict[str, list[str]] | None = None, header_dropout: float = 0.5,
                 header_fields: list[str] | tuple[str, ...] = LABEL_FIELDS):
        """
        Args:
            tokenizer: SentencePiece model file; trained on ``train_manifest``'s descriptions when missing. Ignored
                with ``init_encoder`` (the model directory brings its own).
            init_encoder: a model directory to start from (the audio stage: the symbolic stage's export); its
                architecture replaces ``net``.
            pair_audio_symbolic: audio stage only: align audio with its ABC, not with text (the comparison).
            audio_cache: folder of cached segment features (None: memory only).
            mlm_only_steps: symbolic stage: steps of masked-patch prediction before the contrastive loss joins.
            mlm_max_patches: masked patches a batch predicts the characters of (a random subset of those masked): the
                character head costs ``patch_size`` x 258 logits a patch and would outweigh the encoder.
            langs: description languages to train on (None: every language of each row).
            zero_shot_templates: prompts per attribute for ``evaluate`` (None: the corpus's own description wording in
                every description language, ``zeroshot.corpus_prompts``).
            header_dropout: probability of dropping ``header_fields`` from a training score (each score, each step).
            header_fields: ABC header lines that name an attribute outright (by their start: ``R:``).
        """
        super().__init__()
        if stage not in STAGES:
            raise ValueError(f"stage={stage!r}: choose one of {', '.join(STAGES)}")
        if stage == "audio" and not init_encoder:
            raise ValueError("stage=audio starts from the symbolic stage's model: set model.init_encoder=<its dir>")
        cfg = net if isinstance(net, ClampConfig) else ClampConfig.from_dict(dict(net))
        if init_encoder:
            loaded = hub.load_pretrained(init_encoder, expect=MODEL_TYPE)
            self.net = cast(ClampModel, loaded.model).train()
            self.tokenizer: SentencePieceTokenizer = loaded.files["tokenizer"]
            cfg = self.net.cfg
        else:
            self.tokenizer = self._tokenizer(tokenizer, train_manifest, vocab_size)
            cfg.text.vocab_size = len(self.tokenizer)
            self.net = ClampModel(cfg)
        self.save_hyperparameters({
            "net": asdict(cfg), "stage": stage, "tokenizer": str(self.tokenizer.path), "train_manifest": train_manifest,
            "vocab_size": vocab_size, "init_encoder": init_encoder, "pair_audio_symbolic": pair_audio_symbolic,
            "audio_cache": audio_cache, "mask_ratio": mask_ratio, "mlm_weight": mlm_weight,
            "mlm_only_steps": mlm_only_steps, "mlm_max_patches": mlm_max_patches, "temperature": temperature,
            "lr": lr, "weight_decay": weight_decay,
            "betas": list(betas), "warmup_steps": warmup_steps, "min_lr_ratio": min_lr_ratio, "langs": langs,
            "zero_shot_templates": dict(zero_shot_templates) if zero_shot_templates else None,
            "header_dropout": header_dropout, "header_fields": list(header_fields)})
        self.stage = stage
        self.inputs = MusicInputs(cfg, self.tokenizer, audio_cache)
        self.symbolic_loss = InfoNCELoss(temperature)
        self.audio_loss = InfoNCELoss(temperature)
        self._collect = Collector()
        self._bad: set[str] = set()
        if stage == "audio":
            for part in (self.net.symbolic, self.net.symbolic_proj, self.net.text, self.symbolic_loss):
                part.requires_grad_(False)
            self.train(self.training)  # Lightning keeps each submodule's mode from here on

    @staticmethod
    def _tokenizer(path: str | None, manifest: str | None, vocab_size: int) -> SentencePieceTokenizer:
        if not path or not (Path(path).is_file() or manifest):
            raise ValueError("set model.tokenizer (a SentencePiece file, trained when missing) and "
                             "model.train_manifest (the descriptions it is trained on)")
        return SentencePieceTokenizer.load_or_train(path, lambda: description_texts(str(manifest)), vocab_size,
                                                    what=f"CLaMP 3 tokenizer of {manifest}'s descriptions")

    def train(self, mode: bool = True) -> ClampModule:
        super().train(mode)
        if self.stage == "audio":  # frozen towers keep dropout off whatever Lightning calls
            self.net.symbolic.eval()
            self.net.text.eval()
        return self

    # Inputs.

    def on_before_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict[str, Any]:
        """Read the batch's files into tensors; a row with an unreadable file is dropped (reported once)."""
        need = ("abc", "midi") if self.stage == "symbolic" else ("audio", "abc")
        keep, got = [], {m: [] for m in need}  # type: ignore[var-annotated]
        for i in range(len(batch["ids"])):
            try:
                row = {m: self._read(m, batch[m][i], self._drop_fields()) for m in need if batch[m][i]}
            except ValueError as e:
                path = str(e).split(": ")[0]
                if path not in self._bad:
                    self._bad.add(path)
                    log.warning("skipping %s", e)
                continue
            if "abc" in row:
                keep.append(i)
                for m in need:
                    got[m].append(row.get(m))
        out: dict[str, Any] = {"ids": [batch["ids"][i] for i in keep],
                               "texts": {k: [v[i] for i in keep] for k, v in batch["texts"].items()}}
        if "fits" in batch:
            out["fits"] = torch.tensor(batch["fits"], dtype=torch.bool).reshape(len(batch["ids"]), -1)[keep][:, keep]
        for m, items in got.items():
            if items and all(x is not None for x in items):
                out[m] = (self.inputs.audio_batch(items) if m == "audio" else self.inputs.symbolic_batch(items))
        return out

    def _drop_fields(self) -> tuple[str, ...]:
        """The header fields to drop from one training score (none when evaluating)."""
        if self.training and random.random() < self.hparams["header_dropout"]:
            return tuple(self.hparams["header_fields"])
        return ()

    def _read(self, modality: str, path: str, drop: tuple[str, ...] = ()) -> Tensor:
        try:
            if modality == "audio":
                return self.inputs.audio(path)
            return self.inputs.sheet(path, drop) if modality == "abc" else self.inputs.midi(path)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None

    def pick_texts(self, texts: dict[str, list[str | None]]) -> list[str]:
        """One description per tune, in a random language among those it has (and the run trains on)."""
        langs = self.hparams["langs"]
        n = len(next(iter(texts.values())))
        options = [[t[i] for lang, t in texts.items() if t[i] and (not langs or lang in langs)] for i in range(n)]
        return [str(random.choice(o)) if o else "" for o in options]

    def embed_texts(self, texts: list[str]) -> Tensor:
        ids, mask = self.inputs.texts(texts)
        return self.net.embed_text(ids.to(self.device), mask.to(self.device))

    # Losses.

    @staticmethod
    def contrastive(loss: InfoNCELoss, music: Tensor, text: Tensor, fits: Tensor | None) -> Tensor:
        """Symmetric InfoNCE of ``music [B, E]`` and ``text [B, E]`` whose softmax leaves out the other tunes that a
        description fits (``fits [B, B]``: text i fits tune j)."""
        return loss(music, text, None if fits is None else fits.T)

    def masked_patches(self, ids: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Patch states under random masking, and the masked-patch loss (character cross-entropy)."""
        limit = self.net.symbolic.pos.num_embeddings
        ids, mask = ids[:, :limit], mask[:, :limit]
        masked = (torch.rand(mask.shape, device=mask.device) < self.hparams["mask_ratio"]) & mask  # [B, N]
        states = self.net.symbolic(ids, mask, masked)  # [B, N, D]
        if not bool(masked.any()):
            return states, states.sum() * 0.0
        where = masked.nonzero()  # [M, 2]
        where = where[torch.randperm(len(where), device=where.device)[: self.hparams["mlm_max_patches"]]]
        picked = (where[:, 0], where[:, 1])
        logits = self.net.symbolic.predict_chars(states[picked])  # [M, P, V]
        loss = F.cross_entropy(logits.flatten(0, 1), ids[picked].flatten(), ignore_index=PAD)
        return states, loss

    def symbolic_step(self, batch: dict[str, Any]) -> Tensor:
        hp = self.hparams
        mlm, embs = [], []
        for m in ("abc", "midi"):
            if m in batch:
                ids, mask = batch[m]
                states, loss = self.masked_patches(ids, mask)
                mlm.append(loss)
                # The contrastive view is the masked one: one forward for both losses, and masking augments.
                embs.append((m, self.net.symbolic_proj(masked_mean(states, mask[:, : states.shape[1]]))))
        n = len(batch["ids"])
        mlm_loss = torch.stack(mlm).mean()
        self.log("train/mlm", mlm_loss, batch_size=n)
        if self.global_step < hp["mlm_only_steps"]:
            return mlm_loss
        text = self.embed_texts(self.pick_texts(batch["texts"]))  # [B, E]
        fits = batch.get("fits")
        contrastive = torch.stack([self.contrastive(self.symbolic_loss, e, text, fits) for _, e in embs]).mean()
        self.log("train/contrastive", contrastive, batch_size=n)
        return contrastive + hp["mlm_weight"] * mlm_loss

    def audio_step(self, batch: dict[str, Any]) -> Tensor:
        audio = self.net.embed_audio(*batch["audio"])  # [B, E]
        paired = bool(self.hparams["pair_audio_symbolic"])
        with torch.no_grad():
            target = self.net.embed_symbolic(*batch["abc"]) if paired else self.embed_texts(
                self.pick_texts(batch["texts"]))
        # a recording's own score is its only positive; a description may fit other tunes too
        return self.contrastive(self.audio_loss, audio, target, None if paired else batch.get("fits"))

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor | None:
        if len(batch["ids"]) < 2:
            return None  # every row of the batch was unreadable
        loss = self.symbolic_step(batch) if self.stage == "symbolic" else self.audio_step(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["ids"]))
        return loss

    # Evaluation.

    @torch.no_grad()
    def collect(self, batch: dict[str, Any], collector: Collector) -> None:
        """Add a batch's embeddings of every modality and language to ``collector``."""
        if not batch["ids"]:
            return
        embs: dict[str, Tensor] = {
            m: self.net.embed_audio(*batch[m]) if m == "audio" else self.net.embed_symbolic(*batch[m])
            for m in ("abc", "midi", "audio") if m in batch}
        texts = {lang: self.embed_texts([t or "" for t in ts]) for lang, ts in batch["texts"].items()}
        has = {lang: [t is not None for t in ts] for lang, ts in batch["texts"].items()}
        collector.add(batch["ids"], embs, texts, has)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self.collect(batch, self._collect)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self.collect(batch, self._collect)

    def _log_retrieval(self, prefix: str) -> None:
        target = "abc" if self.stage == "symbolic" else "audio"
        metrics = retrieval_metrics_by_lang(self._collect, target)
        self._collect = Collector()
        if metrics:
            n = len(metrics)
            self.log(f"{prefix}/mrr", sum(m["mrr"] for m in metrics.values()) / n, prog_bar=True)
            self.log(f"{prefix}/hit@1", sum(m["hit@1"] for m in metrics.values()) / n)

    def on_validation_epoch_end(self) -> None:
        self._log_retrieval("val")

    def on_test_epoch_end(self) -> None:
        self._log_retrieval("test")

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        return adamw_warmup_cosine(self, decay_groups(self.named_parameters(), hp["weight_decay"]), hp["lr"],
                                   hp["betas"], hp["warmup_steps"], hp["min_lr_ratio"])

    def export(self, out_dir: str | os.PathLike[str]) -> Path:
        """``config.json`` + ``model.safetensors`` + ``tokenizer.model`` (model_type clamp3)."""
        return hub.save_pretrained(self.net, out_dir, model_type=MODEL_TYPE, files={"tokenizer": self.tokenizer},
                                   stage=self.stage, pair_audio_symbolic=bool(self.hparams["pair_audio_symbolic"]))

    @classmethod
    def evaluate(cls, cfg: Any, ckpt: str) -> dict[str, float]:
        """The retrieval table (text->ABC/MIDI/audio per language, audio<->ABC) and zero-shot accuracy on every
        test split; writes ``retrieval.json`` into the run folder."""
        from music.clamp.evaluation import evaluate_model

        return evaluate_model(cfg, ckpt)
