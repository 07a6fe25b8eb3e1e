"""Zero-shot attribute classification: each value of an attribute becomes text prompts, and a piece takes the value
whose prompts' mean embedding is nearest to its own (CLIP's recipe, in CLaMP 3's shared space).

The prompts are, by default, the music corpus's own descriptions (``datamodules.corpus.music_text``) stating that one
attribute, in any of its description languages, averaged over what every description also names (the genre noun,
and the mode of a key or the tonic of a mode) so that no other attribute leans on the choice. Configs may give
templates instead (``{value}`` is replaced), in any language.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

FACET_OF = {"key": "key", "mode": "key", "meter": "meter", "tempo": "tempo", "tempo_word": "tempo",
            "instrument": "instrument", "contour": "contour", "register": "register", "dynamics": "dynamics",
            "genre": None}
"""Attribute -> the description facet that states it (the genre is in every description)."""
CONTEXT = {"key": "C", "mode": "major", "meter": "4/4", "tempo": 100, "tempo_word": "moderate", "genre": "reel",
           "instrument": "Acoustic Grand Piano", "contour": "arch", "register": "mid", "dynamics": "mf"}
"""Filler for the attributes a prompt does not state (the realiser reads them all)."""


def corpus_prompts(attribute: str, value: Any, langs: Sequence[str] | None = None) -> list[str]:
    """Descriptions stating only ``attribute = value`` in each of ``langs`` (None: every corpus language), one per
    genre (and per mode of a key, per tonic of a mode)."""
    from datamodules.corpus.music_text import LANGS, LEXICONS, TuneMeaning, realise

    if attribute not in FACET_OF:
        raise KeyError(f"no corpus prompts for {attribute!r}; known: {', '.join(FACET_OF)}")
    facet = FACET_OF[attribute]
    meaning = TuneMeaning((facet,) if facet else (), "word" if attribute == "tempo_word" else "bpm")
    out = []
    for lang in langs or LANGS:
        lex = LEXICONS[lang]
        if attribute == "genre":
            contexts: list[dict[str, Any]] = [{"genre": value}] * 4  # four draws of the wording
        else:
            contexts = [{"genre": g} for g in lex["genre"]]
        if attribute == "key":
            contexts = [{**c, "mode": m} for c in contexts for m in lex["key_mod"]]
        elif attribute == "mode":
            contexts = [{**c, "key": t} for c in contexts for t in lex["tonic"]]
        for n, context in enumerate(contexts):
            attrs = {**CONTEXT, **context, attribute: value}
            out.append(realise(meaning, attrs, lang, random.Random(f"{attribute}:{value}:{lang}:{n}")))
    return out


def prompts_for(attribute: str, value: Any, templates: Mapping[str, Sequence[str]] | None = None,
                langs: Sequence[str] | None = None) -> list[str]:
    """The prompts for one attribute value: ``templates``' (``{value}`` filled; an attribute without templates is
    prompted by its bare value), or else the corpus's descriptions in ``langs``."""
    if templates is None:
        return corpus_prompts(attribute, value, langs)
    chosen = templates.get(attribute) or ["{value}"]
    return [t.replace("{value}", str(value)) for t in chosen]


def class_embeddings(embed_text: Callable[[list[str]], Tensor], attribute: str, values: Sequence[Any],
                     templates: Mapping[str, Sequence[str]] | None = None,
                     langs: Sequence[str] | None = None) -> Tensor:
    """One unit vector per value ``[V, E]``: the normalised mean of its prompts' embeddings."""
    out = []
    for value in values:
        emb = embed_text(prompts_for(attribute, value, templates, langs))  # [K, E]
        out.append(F.normalize(F.normalize(emb.float(), dim=-1).mean(0), dim=-1))
    return torch.stack(out)


def classify(music: Tensor, classes: Tensor) -> np.ndarray:
    """Index of the nearest class ``[N]`` for music embeddings ``[N, E]`` and class embeddings ``[V, E]``."""
    return (F.normalize(music.float(), dim=-1) @ classes.T).argmax(1).cpu().numpy()


def zero_shot_accuracy(embed_text: Callable[[list[str]], Tensor], music: Tensor,
                       attributes: Sequence[Mapping[str, Any]], attribute: str,
                       templates: Mapping[str, Sequence[str]] | None = None,
                       langs: Sequence[str] | None = None, classes: Sequence[Any] | None = None) -> dict[str, float]:
    """Accuracy over the pieces that have ``attribute``, the classes being every value among them (or ``classes``,
    which must hold them all), chance (the majority class's share) and each present value's recall
    (``recall/<value>``)."""
    keep = [i for i, a in enumerate(attributes) if a.get(attribute) is not None]
    if not keep:
        return {}
    labels = [attributes[i][attribute] for i in keep]
    values = list(classes) if classes is not None else sorted(set(labels), key=str)
    missing = set(labels) - set(values)
    if missing:
        raise ValueError(f"zero-shot {attribute}: values {sorted(map(str, missing))} are not among the classes")
    pred = classify(music[keep], class_embeddings(embed_text, attribute, values, templates, langs))
    truth = np.array([values.index(v) for v in labels])
    counts = np.bincount(truth, minlength=len(values))
    recall = {f"recall/{v}": float((pred[truth == n] == n).mean()) for n, v in enumerate(values) if counts[n]}
    return {"accuracy": float((pred == truth).mean()), "chance": float(counts.max() / counts.sum()),
            "classes": float(len(values))} | recall
