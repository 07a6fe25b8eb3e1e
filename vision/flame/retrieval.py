"""FLAME's retrieval embedders (common.retrieval): images through the tower + projector, text through the frozen LLM
the model names, both in the LLM's space, so ``scripts/retrieve.py`` indexes a folder of images and answers text
queries with one exported FLAME directory."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.retrieval.embedders import read_text_lines, register_embedder
from datamodules.image_text import CLIP_MEAN, CLIP_STD, ImageTransform, load_image
from vision.flame.model import MODEL_TYPE, FlameModel

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp")


def recognises(config: Mapping[str, Any]) -> bool:
    return config.get("model_type") == MODEL_TYPE


class FlameEmbedder:
    """One loaded FLAME model behind the engine's ``Embedder`` interface, for images or for text."""

    def __init__(self, model_dir: str, modality: str, batch_size: int = 32):
        from vision.flame.hub import load_flame

        self.model: FlameModel = load_flame(model_dir, "cuda" if torch.cuda.is_available() else "cpu")
        self.modality, self.batch_size = modality, batch_size
        size = self.model.cfg.tower.image_size or 224
        self.transform = ImageTransform(size, CLIP_MEAN, CLIP_STD, train=False)  # as the datamodule evaluates

    @property
    def dim(self) -> int:
        return self.model.cfg.embed_dim

    @torch.no_grad()
    def embed(self, inputs: list[Any]) -> np.ndarray:
        if self.modality == "text":
            return self.model.embed_text([str(t) for t in inputs], self.batch_size).cpu().numpy()
        pixels = []
        for path in inputs:
            img = load_image(str(path), str(path))
            if isinstance(img, str):
                raise ValueError(f"{path}: {img}")
            pixels.append(self.transform(img))
        device = next(self.model.parameters()).device
        return self.model.embed_image(torch.stack(pixels).to(device)).cpu().numpy()  # [B, D]


@register_embedder("image", IMAGE_EXTS, name="flame_image", recognises=recognises)
def load_image_embedder(model_dir: str) -> FlameEmbedder:
    return FlameEmbedder(model_dir, "image")


@register_embedder("text", (".txt",), name="flame_text", recognises=recognises, read=read_text_lines)
def load_text_embedder(model_dir: str) -> FlameEmbedder:
    return FlameEmbedder(str(Path(model_dir)), "text")
