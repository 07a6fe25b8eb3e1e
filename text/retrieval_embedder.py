"""The retrieval engine's text embedder: any text tower directory (HF encoder, causal LM, this suite's sentence
encoder) embeds ``.txt`` files, one vector a non-empty line, and text queries.

Registered as ``text_tower`` for the models whose ``config.json`` exactly one text tower kind recognises; a family
with its own text side (FLAME's facet prompts, CLaMP 3) registers its own embedder for its own model type.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch.nn.functional as F

from common.retrieval.embedders import model_config, read_text_lines, register_embedder
from text.towers import TEXT_TOWERS, TextTowerConfig, build_text_tower


def recognises(config: Mapping[str, Any]) -> bool:
    return sum(TEXT_TOWERS.get(k).recognises(dict(config)) for k in TEXT_TOWERS) == 1


class TowerEmbedder:
    """A text tower behind the engine's ``Embedder`` interface."""

    def __init__(self, model_dir: str, batch_size: int = 64):
        config = model_config(model_dir)
        kind = next(k for k in TEXT_TOWERS if TEXT_TOWERS.get(k).recognises(config))
        self.tower = build_text_tower(TextTowerConfig(kind=kind, path=model_dir))
        self.batch_size = batch_size

    @property
    def dim(self) -> int:
        return self.tower.output_dim

    def embed(self, inputs: list[Any]) -> np.ndarray:
        emb = self.tower.encode([str(t) for t in inputs], batch_size=self.batch_size)  # [B, D]
        return F.normalize(emb.float(), dim=-1).numpy()


@register_embedder("text", (".txt",), name="text_tower", recognises=recognises, read=read_text_lines)
def load(model_dir: str) -> TowerEmbedder:
    return TowerEmbedder(model_dir)
