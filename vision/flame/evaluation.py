"""Image-text evaluation shared by FLAME and the CLIP baseline: retrieval per caption language and kind, zero-shot
classification of single-object scenes, cross-lingual transfer, and the side-by-side table.

Rows of a split are images; each image's caption in a language is its one relevant text, so text->image and
image->text recall@k are both over N x N scores (``common.metrics_retrieval``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from common.metrics_retrieval import retrieval_metrics
from datamodules.corpus.vision_captions import COLOURS, SHAPES, entity, scene_realiser

KS = (1, 5, 10)
CLASSES = [(c, s) for c in COLOURS for s in SHAPES]
"""Zero-shot classes: every colour+shape pair (the held-out pairs of the test split among them)."""
DEFAULT_TEMPLATES = {"eng_Latn": ["a photo of {np}.", "{np}"], "default": ["{np}"]}
"""Per language, prompt templates around a class's noun phrase (``{np}``, from the corpus grammar: "a red star",
"ein roter Stern"); ``{colour}`` and ``{shape}`` give the English words. ``default`` serves other languages."""


@dataclass
class Split:
    """Embeddings of one evaluation split, one row per image, the same row order everywhere."""

    ids: list[str]
    images: Tensor
    """[N, D] unit vectors."""
    texts: dict[str, dict[str, Tensor]]
    """lang -> caption kind -> [N, D] unit query vectors."""
    attributes: list[Any]


class Collector:
    """Gathers batch embeddings of a split (across ranks, once per image id)."""

    def __init__(self) -> None:
        self.parts: list[tuple[list[str], Tensor, dict[str, dict[str, Tensor]], list[Any]]] = []

    def add(self, ids: list[str], images: Tensor, texts: dict[str, dict[str, Tensor]], attributes: list[Any]) -> None:
        self.parts.append((list(ids), images.detach().float().cpu(),
                           {lang: {k: v.detach().float().cpu() for k, v in by.items()} for lang, by in texts.items()},
                           list(attributes)))

    def split(self) -> Split | None:
        parts, self.parts = self.parts, []
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            everyone: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(everyone, parts)
            parts = [p for rank in everyone for p in rank]
        seen: dict[str, tuple[Tensor, dict[str, dict[str, Tensor]], Any]] = {}
        for ids, images, texts, attrs in parts:
            for i, row_id in enumerate(ids):  # DDP repeats rows to even out ranks: keep each image once
                if row_id not in seen:
                    seen[row_id] = (images[i], {lang: {k: v[i] for k, v in by.items()} for lang, by in texts.items()},
                                    attrs[i])
        if not seen:
            return None
        rows = list(seen.values())
        langs = rows[0][1]
        texts = {lang: {k: torch.stack([r[1][lang][k] for r in rows]) for k in by} for lang, by in langs.items()}
        return Split(list(seen), torch.stack([r[0] for r in rows]), texts, [r[2] for r in rows])


def retrieval(images: Tensor, texts: Tensor, ks: Sequence[int] = KS) -> dict[str, float]:
    """Text->image and image->text recall@k of paired unit vectors ``[N, D]`` (row i of each is one pair)."""
    scores = texts @ images.T  # [N texts, N images]
    rel = list(range(scores.shape[0]))
    t2i, i2t = retrieval_metrics(scores, rel, ks), retrieval_metrics(scores.T, rel, ks)
    return {**{f"t2i_r{k}": t2i[f"recall@{k}"] for k in ks}, **{f"i2t_r{k}": i2t[f"recall@{k}"] for k in ks}}


def split_retrieval(split: Split) -> dict[str, float]:
    """``<lang>/<kind>/{t2i,i2t}_r{k}`` for every caption language and kind, and ``<kind>/...`` means over languages."""
    out: dict[str, float] = {}
    for lang, by_kind in split.texts.items():
        for kind, texts in by_kind.items():
            out.update({f"{lang}/{kind}/{m}": v for m, v in retrieval(split.images, texts).items()})
    kinds = {k for by in split.texts.values() for k in by}
    for kind in sorted(kinds):
        for m in [f"{d}_r{k}" for d in ("t2i", "i2t") for k in KS]:
            vals = [out[f"{lang}/{kind}/{m}"] for lang in split.texts if f"{lang}/{kind}/{m}" in out]
            out[f"{kind}/{m}"] = sum(vals) / len(vals)
    return out


def transfer(metrics: Mapping[str, float], source: str = "eng_Latn", kind: str = "short") -> dict[str, float]:
    """Each language's text->image R@1 as a share of ``source``'s: the cross-lingual transfer figure (read it on a
    model trained on ``source`` captions only)."""
    base = metrics.get(f"{source}/{kind}/t2i_r1")
    if not base:
        return {}
    return {f"transfer/{lang}": v / base for key, v in metrics.items()
            if key.endswith(f"/{kind}/t2i_r1") and (lang := key.split("/")[0]) != source and key.count("/") == 2}


def single_object_labels(attributes: Sequence[Any]) -> tuple[list[int], list[int]]:
    """Rows that show one kind of object (one colour+shape, any count) and their class index in ``CLASSES``."""
    rows, labels = [], []
    for i, a in enumerate(attributes):
        objs = a.get("objects") if isinstance(a, dict) else None
        if objs and len(objs) == 1 and (objs[0].get("colour"), objs[0].get("shape")) in CLASSES:
            rows.append(i)
            labels.append(CLASSES.index((objs[0]["colour"], objs[0]["shape"])))
    return rows, labels


def class_prompts(lang: str, templates: Mapping[str, Sequence[str]] | None = None) -> list[list[str]]:
    """Per class of ``CLASSES``, its prompts in ``lang``: each template around the grammar's noun phrase."""
    table = templates or DEFAULT_TEMPLATES
    chosen = list(table.get(lang) or table.get("default") or ["{np}"])
    realiser: Any = scene_realiser(lang)  # every language's realiser has np(entity); the base class does not
    out = []
    for colour, shape in CLASSES:
        np_ = realiser.np(entity({"shape": shape, "colour": colour, "count": 1, "size": None}, size=False))
        out.append([t.format(np=np_, colour=colour, shape=shape) for t in chosen])
    return out


def zero_shot(split: Split, embed: Callable[[list[str]], Tensor], lang: str,
              templates: Mapping[str, Sequence[str]] | None = None) -> dict[str, float]:
    """Accuracy of picking each single-object image's colour+shape pair (and its colour, its shape) among all pairs
    by prompt similarity; ``embed`` maps prompts to unit vectors ``[P, D]``. Template embeddings are averaged."""
    rows, labels = single_object_labels(split.attributes)
    if not rows:
        return {}
    prompts = class_prompts(lang, templates)
    per = len(prompts[0])
    emb = embed([p for ps in prompts for p in ps]).float().cpu()  # [C * T, D]
    classes = torch.nn.functional.normalize(emb.view(len(prompts), per, -1).mean(1), dim=-1)  # [C, D]
    pred = (split.images[rows] @ classes.T).argmax(1).tolist()  # [R]
    hit = [CLASSES[p] == CLASSES[y] for p, y in zip(pred, labels)]
    colour = [CLASSES[p][0] == CLASSES[y][0] for p, y in zip(pred, labels)]
    shape = [CLASSES[p][1] == CLASSES[y][1] for p, y in zip(pred, labels)]
    n = len(rows)
    return {"acc": sum(hit) / n, "colour_acc": sum(colour) / n, "shape_acc": sum(shape) / n, "images": float(n)}


def format_table(results: Mapping[str, Mapping[str, float]], split: str = "test", kind: str = "short") -> str:
    """Models side by side: text->image R@1/5/10 and image->text R@1 per caption language of one split, then the
    long-caption and zero-shot rows. ``results``: model name -> flat metrics (``<split>/<lang>/<kind>/t2i_r1``...)."""
    names = list(results)
    keys = sorted({k.split("/")[1] for r in results.values() for k in r
                   if k.startswith(f"{split}/") and k.endswith(f"/{kind}/t2i_r1") and k.count("/") == 3})
    head = f"{split} ({kind} captions)".ljust(26) + "".join(f"{n[:22]:>24}" for n in names)
    lines = [head, " " * 26 + "".join(f"{'t2i R@1/5/10  i2t R@1':>24}" for _ in names)]

    def cell(r: Mapping[str, float], prefix: str) -> str:
        if f"{prefix}/t2i_r1" not in r:
            return f"{'-':>24}"
        vals = [r[f"{prefix}/t2i_r{k}"] for k in KS] + [r[f"{prefix}/i2t_r1"]]
        return f"{' '.join(f'{v:.2f}' for v in vals[:3])}  {vals[3]:.2f}".rjust(24)

    for lang in [*keys, "mean"]:
        prefix = f"{split}/{kind}" if lang == "mean" else f"{split}/{lang}/{kind}"
        lines.append(lang.ljust(26) + "".join(cell(results[n], prefix) for n in names))
    lines.append("long captions (mean)".ljust(26) + "".join(cell(results[n], f"{split}/long") for n in names))
    for metric in ("acc", "colour_acc", "shape_acc"):
        row = [results[n].get(f"{split}/zeroshot/eng_Latn/{metric}") for n in names]
        lines.append(f"zero-shot eng {metric}".ljust(26) + "".join(f"{v:>24.3f}" if v is not None else f"{'-':>24}"
                                                                  for v in row))
    return "\n".join(lines)
