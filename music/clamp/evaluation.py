"""CLaMP 3's evaluation: text->ABC/MIDI/audio retrieval per description language, audio<->ABC retrieval (bridged
through text when the model never saw the pairs), MRR and Hit@1/10/100, and zero-shot attribute accuracy with
prompts in each description language. ABC is scored as written and bare (``abc_bare``: without the header lines
that name an attribute, ``abc.LABEL_FIELDS``), since much real-world ABC has no ``R:`` or ``%%MIDI program``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from common.metrics_retrieval import retrieval_metrics

log = logging.getLogger(__name__)
KS = (1, 10, 100)
ZERO_SHOT = ("key", "mode", "meter", "genre")
TARGETS = ("abc", "abc_bare", "midi", "audio")
"""What text queries retrieve (each where the rows have it)."""


class Collector:
    """Embeddings by name (``abc``, ``midi``, ``audio``, ``text:<lang>``), each with the ids of its rows."""

    def __init__(self) -> None:
        self.ids: dict[str, list[str]] = {}
        self.vecs: dict[str, list[Tensor]] = {}

    def add_named(self, name: str, ids: Sequence[str], emb: Tensor) -> None:
        self.ids.setdefault(name, []).extend(ids)
        self.vecs.setdefault(name, []).append(emb.detach().float().cpu())

    def add(self, ids: Sequence[str], embs: dict[str, Tensor], texts: dict[str, Tensor],
            has: dict[str, list[bool]]) -> None:
        for name, emb in embs.items():
            self.add_named(name, ids, emb)
        for lang, emb in texts.items():
            keep = has[lang]
            rows = torch.tensor(keep, dtype=torch.bool)
            self.add_named(f"text:{lang}", [i for i, k in zip(ids, keep) if k], emb[rows])

    def get(self, name: str) -> tuple[list[str], Tensor]:
        return self.ids.get(name, []), torch.cat(self.vecs[name]) if name in self.vecs else torch.zeros(0, 1)

    def langs(self) -> list[str]:
        return sorted(n.removeprefix("text:") for n in self.ids if n.startswith("text:"))


def retrieve(c: Collector, query: str, target: str, ks: Sequence[int] = KS,
             fits: dict[str, set[str]] | None = None, any_fit: bool = False) -> dict[str, float] | None:
    """MRR and hit@k of ``query`` embeddings finding the ``target`` of their own row; None without pairs.

    ``fits`` (row id -> the ids of the other tunes its description also fits) makes the scoring duplicate-aware:
    those tunes leave the ranking (the "filtered" rank of knowledge-base completion, as training leaves them out of
    the softmax), and ``chance_mrr`` is then the mean chance over what remains. With ``any_fit`` every tune the
    description fits counts as found instead (hit@1: the share of queries whose first tune fits them).
    """
    q_ids, q = c.get(query)
    t_ids, t = c.get(target)
    where = {i: n for n, i in enumerate(t_ids)}
    keep = [n for n, i in enumerate(q_ids) if i in where]
    if not keep or len(t_ids) < 2:
        return None
    scores = (q[keep] @ t.T).numpy()  # [Q, C]
    relevant: list[Any] = [where[q_ids[n]] for n in keep]
    extra: dict[str, float] = {}
    if fits is not None:
        others = [[where[j] for j in fits.get(q_ids[n], ()) if j in where and j != q_ids[n]] for n in keep]
        if any_fit:
            relevant = [[r, *o] for r, o in zip(relevant, others)]
            extra["chance_hit@1"] = sum((1 + len(o)) / len(t_ids) for o in others) / len(keep)
        else:
            floor = float(scores.min()) - 1.0  # below every candidate: they rank after the own tune
            for row, o in enumerate(others):
                scores[row, o] = floor
            extra["chance_mrr"] = sum(chance_mrr(len(t_ids) - len(o)) for o in others) / len(keep)
    metrics = retrieval_metrics(scores, relevant, ks)
    return {k: v for k, v in metrics.items() if not k.startswith("recall")} | extra | {"queries": float(len(keep))}


def fits_of(rows: Sequence[dict[str, Any]]) -> dict[str, set[str]]:
    """Row id -> the ids of the other rows its description also fits (``datamodules.music.description_fits``)."""
    from datamodules.music import description_fits

    return {a["id"]: {b["id"] for b in rows if b is not a and description_fits(a, b)} for a in rows}


def retrieval_metrics_by_lang(c: Collector, target: str, fits: dict[str, set[str]] | None = None,
                              any_fit: bool = False) -> dict[str, dict[str, float]]:
    """Text->``target`` metrics per description language (duplicate-aware with ``fits``, see ``retrieve``)."""
    out = {}
    for lang in c.langs():
        got = retrieve(c, f"text:{lang}", target, fits=fits, any_fit=any_fit)
        if got is not None:
            out[lang] = got
    return out


def retrieval_table(c: Collector, fits: dict[str, set[str]] | None = None) -> dict[str, float]:
    """Flat metrics: ``<split-less name>/<lang>/<metric>`` for text->each modality, mean over languages, and
    audio<->ABC both ways. With ``fits``, also ``text_<target>_fits`` (other tunes the description fits leave the
    ranking) and ``text_<target>_anyfit`` (any tune it fits counts), each with its chance level."""
    out: dict[str, float] = {}
    variants = [("", False)] + ([("_fits", False), ("_anyfit", True)] if fits is not None else [])
    for target in TARGETS:
        for suffix, any_fit in variants:
            by_lang = retrieval_metrics_by_lang(c, target, fits if suffix else None, any_fit)
            name = f"text_{target}{suffix}"
            for lang, metrics in by_lang.items():
                out.update({f"{name}/{lang}/{k}": v for k, v in metrics.items() if k != "queries"})
            if by_lang:
                chance = [k for k in ("chance_mrr", "chance_hit@1") if k in next(iter(by_lang.values()))]
                for k in ("mrr", *(f"hit@{k}" for k in KS), *chance):
                    out[f"{name}/mean/{k}"] = sum(m[k] for m in by_lang.values()) / len(by_lang)
    for q, t in (("audio", "abc"), ("abc", "audio"), ("audio", "abc_bare"), ("midi", "abc"), ("audio", "midi")):
        got = retrieve(c, q, t)
        if got is not None:
            out.update({f"{q}_{t}/{k}": v for k, v in got.items() if k != "queries"})
            out[f"{q}_{t}/chance_mrr"] = chance_mrr(int(got["queries"]))
    return out


def chance_mrr(candidates: int) -> float:
    """Expected MRR of a random ranking with one relevant item among ``candidates``."""
    return sum(1.0 / r for r in range(1, candidates + 1)) / candidates


def format_table(metrics: dict[str, float], split: str) -> str:
    """Text->each target MRR per description language, the cross-modal rows, and zero-shot accuracy per prompt
    language."""
    langs = sorted({k.split("/")[1] for k in metrics if k.startswith("text_") and "/mean/" not in k})
    head = "".join(f"{lang[:3]:>7}" for lang in langs) + f"{'mean':>7}{'hit@1':>7}{'hit@10':>7}"
    lines = [f"{split}: text -> target MRR by description language (hit@1 and hit@10 of the mean)",
             f"  {'target':<14}{head}"]
    for target in [t + s for t in TARGETS for s in ("", "_fits", "_anyfit")]:
        if f"text_{target}/mean/mrr" in metrics:
            row = "".join(f"{metrics.get(f'text_{target}/{lang}/mrr', float('nan')):7.3f}" for lang in langs)
            mean = "".join(f"{metrics[f'text_{target}/mean/{k}']:7.3f}" for k in ("mrr", "hit@1", "hit@10"))
            chance = [f"{k} {metrics[f'text_{target}/mean/{k}']:.3f}" for k in ("chance_mrr", "chance_hit@1")
                      if f"text_{target}/mean/{k}" in metrics]
            lines.append(f"  {target:<14}{row}{mean}" + (f"  ({', '.join(chance)})" if chance else ""))
    if "text_abc_fits/mean/mrr" in metrics:
        lines.append("  _fits: other tunes the description fits leave the ranking; _anyfit: any tune it fits counts")
    pairs = sorted({k.rsplit("/", 1)[0] for k in metrics if k.count("/") == 1 and not k.startswith("text_")})
    if pairs:
        lines.append("  cross-modal (query_target: MRR against chance, hit@1, hit@10)")
        for name in pairs:
            m = {k: metrics[f"{name}/{k}"] for k in ("mrr", "chance_mrr", "hit@1", "hit@10")}
            lines.append(f"  {name:<14}  MRR {m['mrr']:.3f} (chance {m['chance_mrr']:.3f})  hit@1 {m['hit@1']:.3f}  "
                         f"hit@10 {m['hit@10']:.3f}")
    shots = sorted({tuple(k.split("/")[:2]) for k in metrics if k.startswith("zeroshot_")})
    if shots:
        prompt_langs = sorted({k.split("/")[2] for k in metrics if k.startswith("zeroshot_") and
                               k.endswith("/accuracy")}, key=lambda x: (x == "all", x))
        lines.append("  zero-shot accuracy by prompt language (all: every language's prompts together)")
        lines.append(f"  {'':<22}" + "".join(f"{lang[:3]:>7}" for lang in prompt_langs) + f"{'chance':>8}")
        for mod, attr in shots:
            row = "".join(f"{metrics.get(f'{mod}/{attr}/{lang}/accuracy', float('nan')):7.3f}"
                          for lang in prompt_langs)
            name = f"{mod.removeprefix('zeroshot_')} {attr}"
            lines.append(f"  {name:<22}{row}{metrics[f'{mod}/{attr}/chance']:8.3f}")
        for mod, attr in shots:
            if attr.startswith("genre"):
                recall = {k.rsplit("/", 1)[1]: v for k, v in metrics.items() if k.startswith(f"{mod}/{attr}/")
                          and "/recall/" in k}
                lines.append(f"  {mod.removeprefix('zeroshot_')} {attr} recall (all prompts): "
                             + ", ".join(f"{v} {r:.3f}" for v, r in recall.items()))
    return "\n".join(lines)


def zero_shot(embed_text: Callable[[list[str]], Tensor], c: Collector, attributes: dict[str, dict[str, Any]],
              templates: dict[str, list[str]] | None = None,
              modalities: Sequence[str] = ("abc", "abc_bare", "midi", "audio"),
              cache: dict[str, Tensor] | None = None) -> dict[str, float]:
    """Zero-shot accuracy of each attribute in ``ZERO_SHOT`` on each modality's embeddings, with the corpus's prompts
    in each description language and all together (or with ``templates``: ``zeroshot_<m>/<attr>/templates/...``),
    the majority-class rate (``.../chance``) and, for all prompts together, each value's recall
    (``.../all/recall/<value>``). The classes are the values the split has; where a split lacks some of the
    corpus's genres (real tunes), ``genre_all`` also chooses among all of them. ``cache`` keeps prompt embeddings
    between calls (splits)."""
    from datamodules.corpus.music_forms import FORMS
    from datamodules.corpus.music_text import LANGS
    from music.clamp.zeroshot import zero_shot_accuracy

    prompt_langs: list[tuple[str, list[str] | None]] = [("templates", None)]
    if not templates:
        langs = [lang for lang in c.langs() if lang in LANGS] or list(LANGS)
        prompt_langs = [(lang, [lang]) for lang in langs]
        prompt_langs.append(("all", langs))
    cache = {} if cache is None else cache

    def embed_cached(texts: list[str]) -> Tensor:  # the same prompts serve every modality
        key = "\n".join(texts)
        if key not in cache:
            cache[key] = embed_text(texts)
        return cache[key]

    out = {}
    for modality in modalities:
        ids, emb = c.get(modality)
        if not ids:
            continue
        rows = [attributes.get(i, {}) for i in ids]
        tasks: list[tuple[str, str, list[Any] | None]] = [(a, a, None) for a in ZERO_SHOT]
        genres = {r.get("genre") for r in rows} - {None}
        if genres and genres < set(FORMS):
            tasks.append(("genre_all", "genre", sorted(FORMS)))
        for label, attr, classes in tasks:
            for name, langs_ in prompt_langs:
                got = zero_shot_accuracy(embed_cached, emb, rows, attr, templates, langs_, classes)
                if got:
                    out[f"zeroshot_{modality}/{label}/{name}/accuracy"] = got["accuracy"]
                    out[f"zeroshot_{modality}/{label}/chance"] = got["chance"]
                    if name in ("all", "templates"):
                        out.update({f"zeroshot_{modality}/{label}/{name}/{k}": v for k, v in got.items()
                                    if k.startswith("recall/")})
    return out


def evaluate_model(cfg: Any, ckpt: str) -> dict[str, float]:
    """Embed every test split with the model of ``ckpt`` (a training checkpoint or an exported directory), print
    and return the retrieval table and zero-shot accuracy; ``retrieval.json`` goes into the run folder."""
    from common.runner import write_json
    from datamodules.music import read_rows
    from music.clamp.abc import LABEL_FIELDS
    from music.clamp.encoder import MusicEncoder

    encoder = MusicEncoder.from_checkpoint(ckpt, audio_cache=cfg.model.get("audio_cache"))
    splits = {"test": cfg.data.test_manifest, **dict(cfg.data.get("extra_test") or {})}
    results: dict[str, float] = {}
    prompts: dict[str, Tensor] = {}
    for split, manifest in splits.items():
        if not manifest or not Path(manifest).is_file():
            log.warning("skipping %s: no manifest at %s", split, manifest)
            continue
        rows = read_rows(manifest, need=("abc",), langs=cfg.data.get("langs"))
        c = encoder.collect(rows, bare_fields=LABEL_FIELDS)
        # real tunes share genre and key: score duplicate-aware beside the plain ranking
        metrics = retrieval_table(c, fits_of(rows))
        metrics |= zero_shot(encoder.embed_texts, c, {r["id"]: r["attributes"] for r in rows},
                             cfg.model.get("zero_shot_templates"), cache=prompts)
        print(format_table(metrics, split))
        results.update({f"{split}/{k}": v for k, v in metrics.items()})
    write_json(Path(cfg.paths.output_dir) / "retrieval.json", {"checkpoint": ckpt, "metrics": results})
    return results
