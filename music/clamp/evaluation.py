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


def retrieve(c: Collector, query: str, target: str, ks: Sequence[int] = KS) -> dict[str, float] | None:
    """MRR and hit@k of ``query`` embeddings finding the ``target`` of their own row; None without pairs."""
    q_ids, q = c.get(query)
    t_ids, t = c.get(target)
    where = {i: n for n, i in enumerate(t_ids)}
    keep = [n for n, i in enumerate(q_ids) if i in where]
    if not keep or len(t_ids) < 2:
        return None
    scores = (q[keep] @ t.T).numpy()  # [Q, C]
    metrics = retrieval_metrics(scores, [where[q_ids[n]] for n in keep], ks)
    return {k: v for k, v in metrics.items() if not k.startswith("recall")} | {"queries": float(len(keep))}


def retrieval_metrics_by_lang(c: Collector, target: str) -> dict[str, dict[str, float]]:
    """Text->``target`` metrics per description language."""
    out = {}
    for lang in c.langs():
        got = retrieve(c, f"text:{lang}", target)
        if got is not None:
            out[lang] = got
    return out


def retrieval_table(c: Collector) -> dict[str, float]:
    """Flat metrics: ``<split-less name>/<lang>/<metric>`` for text->each modality, mean over languages, and
    audio<->ABC both ways."""
    out: dict[str, float] = {}
    for target in TARGETS:
        by_lang = retrieval_metrics_by_lang(c, target)
        for lang, metrics in by_lang.items():
            out.update({f"text_{target}/{lang}/{k}": v for k, v in metrics.items() if k != "queries"})
        if by_lang:
            for k in ("mrr", *(f"hit@{k}" for k in KS)):
                out[f"text_{target}/mean/{k}"] = sum(m[k] for m in by_lang.values()) / len(by_lang)
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
    for target in TARGETS:
        if f"text_{target}/mean/mrr" in metrics:
            row = "".join(f"{metrics.get(f'text_{target}/{lang}/mrr', float('nan')):7.3f}" for lang in langs)
            mean = "".join(f"{metrics[f'text_{target}/mean/{k}']:7.3f}" for k in ("mrr", "hit@1", "hit@10"))
            lines.append(f"  {target:<14}{row}{mean}")
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
    return "\n".join(lines)


def zero_shot(embed_text: Callable[[list[str]], Tensor], c: Collector, attributes: dict[str, dict[str, Any]],
              templates: dict[str, list[str]] | None = None,
              modalities: Sequence[str] = ("abc", "abc_bare", "midi", "audio"),
              cache: dict[str, Tensor] | None = None) -> dict[str, float]:
    """Zero-shot accuracy of each attribute in ``ZERO_SHOT`` on each modality's embeddings, with the corpus's prompts
    in each description language and all together (or with ``templates``: ``zeroshot_<m>/<attr>/templates/...``),
    and the majority-class rate (``.../chance``). ``cache`` keeps prompt embeddings between calls (splits)."""
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
        for attr in ZERO_SHOT:
            for name, langs_ in prompt_langs:
                got = zero_shot_accuracy(embed_cached, emb, rows, attr, templates, langs_)
                if got:
                    out[f"zeroshot_{modality}/{attr}/{name}/accuracy"] = got["accuracy"]
                    out[f"zeroshot_{modality}/{attr}/chance"] = got["chance"]
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
        metrics = retrieval_table(c) | zero_shot(encoder.embed_texts, c, {r["id"]: r["attributes"] for r in rows},
                                                 cfg.model.get("zero_shot_templates"), cache=prompts)
        print(format_table(metrics, split))
        results.update({f"{split}/{k}": v for k, v in metrics.items()})
    write_json(Path(cfg.paths.output_dir) / "retrieval.json", {"checkpoint": ckpt, "metrics": results})
    return results
