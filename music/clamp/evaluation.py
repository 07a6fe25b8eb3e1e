"""CLaMP 3's evaluation: text->ABC/MIDI/audio retrieval per description language, audio<->ABC retrieval (bridged
through text when the model never saw the pairs), MRR and Hit@1/10/100, and zero-shot attribute accuracy."""

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
    for target in ("abc", "midi", "audio"):
        by_lang = retrieval_metrics_by_lang(c, target)
        for lang, metrics in by_lang.items():
            out.update({f"text_{target}/{lang}/{k}": v for k, v in metrics.items() if k != "queries"})
        if by_lang:
            for k in ("mrr", *(f"hit@{k}" for k in KS)):
                out[f"text_{target}/mean/{k}"] = sum(m[k] for m in by_lang.values()) / len(by_lang)
    for q, t in (("audio", "abc"), ("abc", "audio"), ("midi", "abc"), ("audio", "midi")):
        got = retrieve(c, q, t)
        if got is not None:
            out.update({f"{q}_{t}/{k}": v for k, v in got.items() if k != "queries"})
            out[f"{q}_{t}/chance_mrr"] = chance_mrr(int(got["queries"]))
    return out


def chance_mrr(candidates: int) -> float:
    """Expected MRR of a random ranking with one relevant item among ``candidates``."""
    return sum(1.0 / r for r in range(1, candidates + 1)) / candidates


def format_table(metrics: dict[str, float], split: str) -> str:
    """The mean rows, the cross-modal rows and the zero-shot rows, one line each."""
    lines = [f"{split}:"]
    shown = {k.rsplit("/", 1)[0] for k in metrics if "/mean/" in k or k.count("/") == 1 or k.startswith("zeroshot")}
    for name in sorted(shown):
        vals = "  ".join(f"{k.rsplit('/', 1)[1]} {v:.3f}" for k, v in metrics.items() if k.rsplit("/", 1)[0] == name)
        lines.append(f"  {name:<22} {vals}")
    return "\n".join(lines)


def zero_shot(embed_text: Callable[[list[str]], Tensor], c: Collector, attributes: dict[str, dict[str, Any]],
              templates: dict[str, list[str]] | None = None, modality: str = "abc") -> dict[str, float]:
    """Zero-shot accuracy (and chance) of each attribute in ``ZERO_SHOT`` on one modality's embeddings."""
    from music.clamp.zeroshot import zero_shot_accuracy

    ids, emb = c.get(modality)
    if not ids:
        return {}
    rows = [attributes.get(i, {}) for i in ids]
    out = {}
    for attr in ZERO_SHOT:
        got = zero_shot_accuracy(embed_text, emb, rows, attr, templates)
        out.update({f"zeroshot_{modality}/{attr}/{k}": v for k, v in got.items()})
    return out


def evaluate_model(cfg: Any, ckpt: str) -> dict[str, float]:
    """Embed every test split with the model of ``ckpt`` (a training checkpoint or an exported directory), print
    and return the retrieval table and zero-shot accuracy; ``retrieval.json`` goes into the run folder."""
    from common.runner import write_json
    from datamodules.music import read_rows
    from music.clamp.encoder import MusicEncoder

    encoder = MusicEncoder.from_checkpoint(ckpt, audio_cache=cfg.model.get("audio_cache"))
    splits = {"test": cfg.data.test_manifest, **dict(cfg.data.get("extra_test") or {})}
    results: dict[str, float] = {}
    for split, manifest in splits.items():
        if not manifest or not Path(manifest).is_file():
            log.warning("skipping %s: no manifest at %s", split, manifest)
            continue
        rows = read_rows(manifest, need=("abc",), langs=cfg.data.get("langs"))
        c = encoder.collect(rows)
        metrics = retrieval_table(c) | zero_shot(encoder.embed_texts, c, {r["id"]: r["attributes"] for r in rows},
                                                 cfg.model.get("zero_shot_templates"))
        print(format_table(metrics, split))
        results.update({f"{split}/{k}": v for k, v in metrics.items()})
    write_json(Path(cfg.paths.output_dir) / "retrieval.json", {"checkpoint": ckpt, "metrics": results})
    return results
