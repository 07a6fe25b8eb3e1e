"""FLAME's networks: an image tower from timm or open_clip, the MLP projector into the frozen LLM's space, and the
model that pairs them with the LLM's facet encoder for text.

FLAME (Cao et al., 2024, "FLAME: Frozen Large Language Models Enable Data-Efficient Language-Image Pre-training"):
only the image side trains; captions are encoded once by a frozen LLM (``vision.flame.facets``, offline in
``vision.flame.cache``), so the LLM is loaded only to embed new text (zero-shot prompts, search queries).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import Tensor, nn

from vision.flame.config import FlameConfig, ImageTowerConfig

log = logging.getLogger(__name__)
MODEL_TYPE = "flame"


def read_weights(path: str | Path) -> dict[str, Tensor]:
    """A state dict from a safetensors file or a torch file (``weights_only``), unwrapped and de-prefixed."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"image tower weights {p}: no such file")
    try:
        state: Any = load_file(str(p)) if p.suffix == ".safetensors" else torch.load(p, map_location="cpu",
                                                                                      weights_only=True)
    except Exception as e:  # safetensors and torch raise several kinds for a damaged file
        raise ValueError(f"image tower weights {p}: unreadable ({type(e).__name__}: {e})") from e
    for key in ("state_dict", "model", "module"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"image tower weights {p}: not a state dict")
    out = {}
    for k, v in state.items():
        for prefix in ("module.", "visual."):  # DDP wrappers; open_clip keeps the image tower under visual.
            k = k.removeprefix(prefix)
        out[k] = v
    return out


def load_tower_weights(tower: nn.Module, path: str | Path) -> None:
    """Load local weights into ``tower``; keys it lacks (a classifier head) are ignored, a file that fits nothing is
    an error."""
    state = read_weights(path)
    own = tower.state_dict()
    fit = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not fit:
        raise ValueError(f"image tower weights {path}: no tensor fits the tower (first keys: {list(state)[:5]})")
    missing = [k for k in own if k not in fit]
    tower.load_state_dict(fit, strict=False)
    if missing:
        log.warning("image tower weights %s: %d of %d tensors not in the file (left random): %s", path, len(missing),
                    len(own), ", ".join(missing[:8]))


def build_image_tower(cfg: ImageTowerConfig) -> tuple[nn.Module, int]:
    """The backbone (images ``[B, 3, H, W]`` -> pooled features ``[B, F]``) and its feature width F."""
    if cfg.library == "timm":
        import timm

        sizes = {"img_size": cfg.image_size, "patch_size": cfg.patch_size, "depth": cfg.depth,
                 "embed_dim": cfg.width, "num_heads": cfg.heads, "global_pool": cfg.pool}
        kwargs = {k: v for k, v in sizes.items() if v is not None} | cfg.kwargs
        tower = timm.create_model(cfg.name, pretrained=False, num_classes=0, **kwargs)
        dim = int(getattr(tower, "num_features"))  # noqa: B009 (an int attribute; nn.Module's typing says Tensor)
    else:
        import open_clip

        unsupported = [k for k in ("patch_size", "depth", "width", "heads", "pool") if getattr(cfg, k) is not None]
        if unsupported:
            raise ValueError(f"open_clip tower {cfg.name}: {', '.join(unsupported)} can't be set (timm only); "
                             "pick a named open_clip model instead")
        extra = {"force_image_size": cfg.image_size} if cfg.image_size else {}
        clip: Any = open_clip.create_model(cfg.name, pretrained=None, **extra, **cfg.kwargs)
        tower, dim = clip.visual, int(clip.visual.output_dim)
    if cfg.weights:
        load_tower_weights(tower, cfg.weights)
    return tower, dim


class Projector(nn.Module):
    """Linear -> GELU -> Linear -> LayerNorm, as FLAME's projector from pooled ViT features into the LLM space."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, out_dim),
                                 nn.LayerNorm(out_dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ImageEncoder(nn.Module):
    """Image tower + projector: images ``[B, 3, H, W]`` -> ``[B, out_dim]`` (``embed`` normalises)."""

    def __init__(self, tower: ImageTowerConfig, out_dim: int, hidden: int):
        super().__init__()
        self.tower, self.feature_dim = build_image_tower(tower)
        self.projector = Projector(self.feature_dim, hidden, out_dim)

    def forward(self, images: Tensor) -> Tensor:
        return self.projector(self.tower(images))  # [B, D]

    def embed(self, images: Tensor) -> Tensor:
        """Unit-length image embeddings ``[B, D]``."""
        return F.normalize(self(images).float(), dim=-1)


class FlameModel(nn.Module):
    """FLAME's trained image side in the frozen LLM's space, with that LLM's facet encoder for text on demand."""

    model_type = MODEL_TYPE

    def __init__(self, cfg: FlameConfig):
        super().__init__()
        if cfg.embed_dim < 1:
            raise ValueError("FlameConfig.embed_dim is not set (the LLM's hidden size; training reads it from the "
                             "embedding cache)")
        self.cfg = cfg
        self.image = ImageEncoder(cfg.tower, cfg.embed_dim, cfg.hidden)
        self._text: list[Any] = []  # the FacetEncoder, held outside the module tree: no LLM weights in our state

    def embed_image(self, images: Tensor) -> Tensor:
        """Unit-length image embeddings ``[B, D]``."""
        return self.image.embed(images)

    def forward(self, images: Tensor) -> Tensor:
        return self.embed_image(images)

    def text_encoder(self, llm_dir: str | Path | None = None) -> Any:
        """The frozen LLM's facet encoder with the single query prompt, loaded on first use."""
        if not self._text:
            from vision.flame.facets import FacetEncoder, FacetPrompts, facet_set

            path = llm_dir or self.cfg.llm_dir
            if not path or not Path(path).is_dir():
                raise FileNotFoundError(f"FLAME text side: LLM directory {path!r} not found (its config names the "
                                        "LLM that made the training embeddings; pass llm_dir= for a moved one)")
            prompts = (FacetPrompts.from_dict(self.cfg.single_prompt, "single") if self.cfg.single_prompt
                       else facet_set("single"))
            self._text.append(FacetEncoder(path, prompts, self.cfg.max_caption_tokens,
                                           device=next(self.parameters()).device))
        return self._text[0]

    def embed_text(self, texts: list[str], batch_size: int = 32) -> Tensor:
        """Unit-length text embeddings ``[B, D]`` through the frozen LLM (one prompt, as FLAME queries)."""
        facets = self.text_encoder().encode(texts, batch_size)  # [B, 1, D]
        return facet_query(facets, "mean")


def facet_query(facets: Tensor, query: str) -> Tensor:
    """One unit query vector per caption from its facet vectors ``[B, K, D]`` (``mean`` or ``first``)."""
    x = facets.float().mean(1) if query == "mean" else facets[:, 0].float()
    return F.normalize(x, dim=-1)  # [B, D]
