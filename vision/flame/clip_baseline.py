"""The CLIP baseline of the FLAME comparison: FLAME's image tower and projector, but a small transformer text tower
trained from scratch on the same captions with InfoNCE (Radford et al., 2021), as the paper's CLIP runs are.

Its text tower is the suite's sentence encoder (``text.sentence_encoder``) over a SentencePiece vocabulary trained on
the training captions (every language, both kinds) when the run starts. Exported as model_type
``flame_clip_baseline``: ``config.json`` + ``model.safetensors`` + ``tokenizer.model``.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor, nn

from common import hub
from common.losses import InfoNCELoss
from datamodules.image_text import image_text_rows
from text.sentence_encoder import TOKENIZER, SentenceEncoder, SentenceEncoderConfig, sentence_encoder_tiny
from text.tokenizer import SentencePieceTokenizer
from vision.flame.config import ImageTowerConfig, flame_tiny, split_tower_keys
from vision.flame.model import ImageEncoder
from vision.flame.module import ImageTextModule, TextEmb, as_dict

log = logging.getLogger(__name__)
MODEL_TYPE = "flame_clip_baseline"


@dataclass
class ClipBaselineConfig:
    """Image tower + projector and a from-scratch text tower meeting in a space of the text tower's width."""

    tower: ImageTowerConfig = field(default_factory=ImageTowerConfig)
    """The image backbone (the same as FLAME's in the comparison)."""
    text: SentenceEncoderConfig = field(default_factory=SentenceEncoderConfig)
    """The text tower; its ``embed_dim`` is the shared space's width, its ``vocab_size`` the tokenizer's."""
    projector_hidden: int | None = None
    """Hidden width of the image projector; None: 2 * the text tower's ``embed_dim``."""

    def __post_init__(self) -> None:
        if isinstance(self.tower, dict):
            self.tower = ImageTowerConfig(**self.tower)
        if isinstance(self.text, dict):
            self.text = SentenceEncoderConfig(**self.text)

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> ClipBaselineConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in config.items() if k in names})


def clip_baseline_tiny(**overrides: Any) -> ClipBaselineConfig:
    """``flame_tiny``'s tower, and ``sentence_encoder_tiny`` (``text_<field>`` keys) with 256-d output as the text
    tower; the vocabulary size comes from the tokenizer."""
    tower, rest = split_tower_keys(overrides)
    text = {k.removeprefix("text_"): v for k, v in rest.items() if k.startswith("text_")}
    rest = {k: v for k, v in rest.items() if not k.startswith("text_")}
    base = flame_tiny(**tower)
    return ClipBaselineConfig(tower=base.tower, text=sentence_encoder_tiny(**{"embed_dim": 256, **text}),
                              projector_hidden=rest.pop("projector_hidden", base.projector_hidden), **rest)


class ClipBaselineModel(nn.Module):
    """Image encoder and text tower of the CLIP baseline; both embed to unit vectors of one width."""

    model_type = MODEL_TYPE

    def __init__(self, cfg: ClipBaselineConfig):
        super().__init__()
        self.cfg = cfg
        dim = cfg.text.embed_dim
        self.image = ImageEncoder(cfg.tower, dim, cfg.projector_hidden or 2 * dim)
        self.text = SentenceEncoder(cfg.text)

    def embed_image(self, images: Tensor) -> Tensor:
        return self.image.embed(images)  # [B, D]

    def embed_text(self, ids: Tensor, mask: Tensor) -> Tensor:
        return self.text(ids, mask)  # [B, D], unit length


@hub.register_model_type(MODEL_TYPE, files={"tokenizer": TOKENIZER})
def build(config: dict[str, Any]) -> ClipBaselineModel:
    return ClipBaselineModel(ClipBaselineConfig.from_dict(config))


def caption_texts(train_path: str) -> list[str]:
    """Every caption (all languages, both kinds) of an image-text training set: the baseline tokenizer's text."""
    return [t for row in image_text_rows(train_path) for by in row["captions"].values() if isinstance(by, dict)
            for t in by.values() if isinstance(t, str)]


class ClipBaselineModule(ImageTextModule):
    """Trains image and text towers together with symmetric InfoNCE; one caption per image and step, its language
    (and kind) drawn at random among the batch's."""

    def __init__(
        self,
        net: ClipBaselineConfig | dict[str, Any],
        tokenizer: str,
        train_path: str | None = None,
        vocab_size: int = 4000,
        temperature: float = 0.07,
        lr: float = 1e-3,
        weight_decay: float = 0.05,
        betas: tuple[float, float] = (0.9, 0.98),
        warmup_steps: int = 200,
        min_lr_ratio: float = 0.05,
        zero_shot_templates: dict[str, list[str]] | None = None,
        tokenizer_ready: bool = False,
    ):
        """
        Args:
            tokenizer: the SentencePiece model file; trained on ``train_path``'s captions when missing.
            vocab_size: pieces of a newly trained tokenizer.
            tokenizer_ready: set in checkpoints: the weights belong to that tokenizer, which must not be retrained.
        """
        super().__init__()
        cfg = as_dict(net)
        text = dict(cfg.get("text") or {})
        if not Path(tokenizer).is_file():
            if tokenizer_ready:
                raise FileNotFoundError(f"model.tokenizer={tokenizer}: the tokenizer these weights were trained with "
                                        "is missing")
            if not train_path:
                raise ValueError(f"model.tokenizer={tokenizer} does not exist and model.train_path is not set")
        self.tokenizer = SentencePieceTokenizer.load_or_train(
            tokenizer, lambda: caption_texts(str(train_path)), vocab_size,
            what=f"CLIP baseline tokenizer of {train_path}'s captions")
        cfg["text"] = {**text, "vocab_size": len(self.tokenizer)}
        self.save_hyperparameters({
            "net": cfg, "tokenizer": str(tokenizer), "train_path": train_path, "vocab_size": vocab_size,
            "temperature": temperature, "lr": lr, "weight_decay": weight_decay, "betas": list(betas),
            "warmup_steps": warmup_steps, "min_lr_ratio": min_lr_ratio,
            "zero_shot_templates": dict(zero_shot_templates) if zero_shot_templates else None,
            "tokenizer_ready": True})
        self.net = ClipBaselineModel(ClipBaselineConfig.from_dict(cfg))
        self.loss_fn = InfoNCELoss(temperature)

    def image_embeddings(self, images: Tensor) -> Tensor:
        return self.net.embed_image(images)

    def embed_texts(self, texts: list[str]) -> Tensor:
        ids, mask = self.tokenizer.batch(texts, max_length=self.net.cfg.text.max_length)
        return self.net.embed_text(ids.to(self.device), mask.to(self.device))

    def query_embeddings(self, batch: dict[str, Any]) -> TextEmb:
        if "captions" not in batch:
            raise ValueError("the CLIP baseline reads captions: leave data.text_embeddings unset")
        return {lang: {k: self.embed_texts(v) for k, v in by.items()} for lang, by in batch["captions"].items()}

    def training_step(self, batch: dict[str, Any] | None, batch_idx: int) -> Tensor | None:
        if batch is None:
            return None
        options = [texts for by in batch["captions"].values() for texts in by.values()]  # each [B] str
        texts = [random.choice(options)[i] for i in range(len(batch["ids"]))]
        img = self.net.image(batch["image"])  # [B, D]
        loss = self.loss_fn(img, self.embed_texts(texts))
        self.log("train/loss", loss, prog_bar=True, batch_size=len(texts))
        self.log("train/scale", self.loss_fn.scale, batch_size=len(texts))
        return loss

    def prompt_embedder(self, device: torch.device) -> Callable[[list[str]], Tensor] | None:
        return self.embed_texts

    @classmethod
    def load_for_eval(cls, cfg: Any, ckpt: str) -> ImageTextModule:
        if not Path(ckpt).is_dir():
            return super().load_for_eval(cfg, ckpt)
        loaded = hub.load_pretrained(ckpt, expect=MODEL_TYPE)
        net = cast(ClipBaselineModel, loaded.model)
        module = cls(asdict(net.cfg), tokenizer=str(loaded.files["tokenizer"].path),
                     zero_shot_templates=cfg.model.get("zero_shot_templates"))
        module.net = net
        return module

    def export(self, out_dir: str | os.PathLike[str]) -> Path:
        """``config.json`` + ``model.safetensors`` + ``tokenizer.model`` (model_type flame_clip_baseline)."""
        return hub.save_pretrained(self.net, out_dir, model_type=MODEL_TYPE, files={"tokenizer": self.tokenizer})
