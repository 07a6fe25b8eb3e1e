"""FLAME's image side: the image tower chosen by name (timm or open_clip) and the MLP projector into the LLM space.

Named sizes are functions (``flame_tiny()`` calls ``flame(...)``); the text side is fixed by the frozen LLM and its
facet prompts, which the config records (``llm_dir``, ``prompts``) so that an exported model can embed text too.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

LIBRARIES = ("timm", "open_clip")
QUERIES = ("mean", "first")


@dataclass
class ImageTowerConfig:
    """An image backbone from timm or open_clip, returning one pooled feature vector per image."""

    library: str = "timm"
    """``timm`` or ``open_clip``; a ``name`` written ``<library>:<model>`` sets it too."""
    name: str = "vit_tiny_patch16_224"
    """The library's model name (``timm.list_models()``, ``open_clip.list_models()``)."""
    image_size: int | None = 96
    """Input side in pixels (timm ``img_size``, open_clip ``force_image_size``); None: the model's own."""
    patch_size: int | None = None
    """ViT patch side (timm only); None: the model's own."""
    depth: int | None = None
    """Transformer blocks (timm ViTs only); None: the model's own."""
    width: int | None = None
    """Token width (timm ViTs' ``embed_dim``); None: the model's own."""
    heads: int | None = None
    """Attention heads (timm ViTs' ``num_heads``); None: the model's own."""
    pool: str | None = None
    """timm ``global_pool`` (``token``, ``avg``, ...); None: the model's own."""
    weights: str | None = None
    """Local weights (.safetensors, or a torch file read with weights_only=True) loaded into the tower; an open_clip
    checkpoint's ``visual.`` prefix is stripped. None: random initialisation (nothing is downloaded)."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Further keyword arguments of ``timm.create_model`` / ``open_clip.create_model``."""

    def __post_init__(self) -> None:
        if ":" in self.name:
            self.library, self.name = self.name.split(":", 1)
        if self.library not in LIBRARIES:
            raise ValueError(f"image tower library {self.library!r}: expected one of {', '.join(LIBRARIES)}")
        self.kwargs = dict(self.kwargs)


@dataclass
class FlameConfig:
    """The trained part of FLAME (image tower + projector) and the text side it was trained against."""

    tower: ImageTowerConfig = field(default_factory=ImageTowerConfig)
    """The image backbone."""
    embed_dim: int = 0
    """Width D of the shared space: the LLM's hidden size (0: read from the embedding cache when training starts)."""
    projector_hidden: int | None = None
    """Hidden width of the projector (Linear -> GELU -> Linear -> LayerNorm); None: 2 * ``embed_dim``."""
    query: str = "mean"
    """Text query vector from a caption's facets: ``mean`` (normalised mean, FLAME's retrieval) or ``first`` (the
    ``whole`` facet, which equals the single-prompt embedding: facet-decoupled attention keeps facets independent)."""
    llm_dir: str | None = None
    """The frozen causal LM directory that made the text embeddings (from the cache's manifest)."""
    llm_fingerprint: str | None = None
    """``vision.flame.cache.llm_fingerprint`` of that LLM; an evaluation cache must have the same."""
    prompts: dict[str, Any] = field(default_factory=dict)
    """Facet prompt set per caption kind (``FacetPrompts.identity()``), as the cache recorded them."""
    single_prompt: dict[str, Any] = field(default_factory=dict)
    """The one-prompt set for text queries encoded at run time (zero-shot classification, search)."""
    max_caption_tokens: int = 128
    """Caption cut of the text encoder (as in the cache)."""

    def __post_init__(self) -> None:
        if isinstance(self.tower, dict):
            self.tower = ImageTowerConfig(**self.tower)
        if self.query not in QUERIES:
            raise ValueError(f"query={self.query!r}: expected one of {', '.join(QUERIES)}")

    @property
    def hidden(self) -> int:
        return self.projector_hidden or 2 * self.embed_dim

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> FlameConfig:
        """The architecture keys of a dict (a model directory's ``config.json`` holds others too)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in config.items() if k in names})


TOWER_KEYS = {f.name for f in fields(ImageTowerConfig)}


def split_tower_keys(overrides: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(tower keys, the rest) of a named size's flat overrides."""
    return ({k: v for k, v in overrides.items() if k in TOWER_KEYS},
            {k: v for k, v in overrides.items() if k not in TOWER_KEYS})


def flame(**overrides: Any) -> FlameConfig:
    """FLAME with explicit overrides; tower keys (``name``, ``image_size``, ``depth``, ...) go to the tower."""
    tower, rest = split_tower_keys(overrides)
    return FlameConfig(tower=ImageTowerConfig(**tower), **rest)


def flame_tiny(**overrides: Any) -> FlameConfig:
    """A 6-block ViT-Tiny (width 192) on 96 px images in 16 px patches with mean pooling, ~3M parameters: a step of
    64 images took 1.4-1.8 s on the shared 2-core CPU (fp32 or bf16), so 15-20 minutes are ~600 steps."""
    return flame(**{"name": "vit_tiny_patch16_224", "image_size": 96, "patch_size": 16, "depth": 6, "pool": "avg",
                    "projector_hidden": 512, **overrides})


def flame_base(**overrides: Any) -> FlameConfig:
    """ViT-B/16 at 224 px, the paper's smallest tower."""
    return flame(**{"name": "vit_base_patch16_224", "image_size": 224, **overrides})
