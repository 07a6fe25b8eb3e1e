"""Zero-shot attribute classification: each value of an attribute becomes text prompts, and a piece takes the value
whose prompts' mean embedding is nearest to its own (CLIP's recipe, in CLaMP 3's shared space)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

DEFAULT_TEMPLATES: dict[str, list[str]] = {
    "key": ["a tune in {value}", "in the key of {value}"],
    "mode": ["a tune in {value}", "a melody in a {value} mode"],
    "meter": ["a tune in {value} time", "in {value}"],
    "genre": ["a {value}", "a {value} tune"],
    "instrument": ["played on {value}", "a {value} tune"],
    "contour": ["a {value} melody"],
    "register": ["a melody in a {value} register"],
    "dynamics": ["played {value}"],
    "tempo": ["a tune at {value} beats per minute"],
}
"""English prompt templates per attribute (``{value}`` is the attribute's value); configs may give any language."""


def prompts_for(attribute: str, value: str, templates: Mapping[str, Sequence[str]] | None = None) -> list[str]:
    """The prompts for one attribute value; an attribute without templates is prompted by its bare value."""
    chosen = (templates or DEFAULT_TEMPLATES).get(attribute) or ["{value}"]
    return [t.replace("{value}", str(value)) for t in chosen]


def class_embeddings(embed_text: Callable[[list[str]], Tensor], attribute: str, values: Sequence[str],
                     templates: Mapping[str, Sequence[str]] | None = None) -> Tensor:
    """One unit vector per value ``[V, E]``: the normalised mean of its prompts' embeddings."""
    out = []
    for value in values:
        emb = embed_text(prompts_for(attribute, value, templates))  # [K, E]
        out.append(F.normalize(F.normalize(emb.float(), dim=-1).mean(0), dim=-1))
    return torch.stack(out)


def classify(music: Tensor, classes: Tensor) -> np.ndarray:
    """Index of the nearest class ``[N]`` for music embeddings ``[N, E]`` and class embeddings ``[V, E]``."""
    return (F.normalize(music.float(), dim=-1) @ classes.T).argmax(1).cpu().numpy()


def zero_shot_accuracy(embed_text: Callable[[list[str]], Tensor], music: Tensor,
                       attributes: Sequence[Mapping[str, Any]], attribute: str,
                       templates: Mapping[str, Sequence[str]] | None = None) -> dict[str, float]:
    """Accuracy over the pieces that have ``attribute``, the classes being every value among them, and chance."""
    keep = [i for i, a in enumerate(attributes) if a.get(attribute) is not None]
    if not keep:
        return {}
    labels = [str(attributes[i][attribute]) for i in keep]
    values = sorted(set(labels))
    pred = classify(music[keep], class_embeddings(embed_text, attribute, values, templates))
    truth = np.array([values.index(v) for v in labels])
    counts = np.bincount(truth, minlength=len(values))
    return {"accuracy": float((pred == truth).mean()), "chance": float(counts.max() / counts.sum()),
            "classes": float(len(values))}
