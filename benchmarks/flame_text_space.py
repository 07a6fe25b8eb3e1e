"""What the frozen LLM's caption space separates: the ceiling FLAME's image side trains against.

    python benchmarks/flame_text_space.py [cache=data/vision/flame_cache] [captions=data/vision/folder/test]
        [kind=short] [output=<json>]
    python benchmarks/flame_text_space.py llm=<causal LM dir> n=300     # no cache: the LLM encodes n scenes' captions

Reads the cached facet vectors of one split (no LLM, no image model) and, per caption language, their query vectors
(the normalised facet mean, as FLAME retrieves with):

- ``xling_r1``: the caption as a query among the English captions of the split, R@1 of its own scene. An image
  embedded exactly onto its English caption's vector scores this text->image R@1 in that language, so it bounds what
  a perfect image side reaches without pulling the languages together.
- ``nn_<attribute>``: how often a caption's nearest other caption (another scene, same language) shares the first
  object's colour, shape, count, size or position, against ``chance_<attribute>`` (a random other scene). Near chance:
  the LLM's vector barely encodes that attribute, and no image side can be retrieved by it.
- ``cos_mean``, ``cos_nn``: mean cosine of two different captions and of each caption to its nearest other one (a
  crowded space has both near 1).

``center=lang`` (or ``all``) first subtracts the mean facet vector of each language's captions (or of every
language's) from the facet vectors: whether the crowding, not the content, hides the attributes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig

from common import runner
from common.io import atomic_open
from datamodules.image_text import read_rows
from vision.flame.cache import EmbeddingCache
from vision.flame.facets import FacetEncoder, facet_set
from vision.flame.model import facet_query

ATTRIBUTES = ("colour", "shape", "count", "size", "position")


def first_object(row: dict[str, Any]) -> dict[str, Any]:
    objs = (row.get("attributes") or {}).get("objects") or [{}]
    return objs[0]


def space_stats(queries: torch.Tensor, english: torch.Tensor, objects: list[dict[str, Any]]) -> dict[str, float]:
    """The figures of one language's unit query vectors ``[N, D]`` against English ``[N, D]`` (row i: scene i)."""
    n = queries.shape[0]
    eye = torch.eye(n, dtype=torch.bool)
    cross = queries @ english.T  # [N, N]
    out = {"xling_r1": (cross.argmax(1) == torch.arange(n)).float().mean().item()}
    sims = (queries @ queries.T).masked_fill(eye, float("-inf"))  # [N, N], self excluded
    nn = sims.argmax(1)  # [N]
    out["cos_nn"] = sims.max(1).values.mean().item()
    out["cos_mean"] = (queries @ queries.T)[~eye].mean().item()
    for a in ATTRIBUTES:
        vals = [o.get(a) for o in objects]
        same = torch.tensor([[x == y for y in vals] for x in vals]) & ~eye  # [N, N]
        out[f"nn_{a}"] = same[torch.arange(n), nn].float().mean().item()
        out[f"chance_{a}"] = (same.sum() / (n * (n - 1))).item()
    return out


def centred(facets: dict[str, torch.Tensor], center: str) -> dict[str, torch.Tensor]:
    """Facet vectors ``{lang: [N, K, D]}`` less their mean: per language (``lang``), over all (``all``), or as they
    are (``none``)."""
    if center == "none":
        return facets
    if center == "lang":
        return {lang: f - f.float().mean((0, 1)) for lang, f in facets.items()}
    if center == "all":
        mean = torch.cat([f.float().flatten(0, 1) for f in facets.values()]).mean(0)
        return {lang: f - mean for lang, f in facets.items()}
    raise ValueError(f"center={center!r}: expected none, lang or all")


def encoded(cfg: DictConfig, rows: list[dict[str, Any]], kind: str) -> tuple[dict[str, torch.Tensor], str | None]:
    """Unit query vectors ``{lang: [N, D]}`` of the rows' captions, from the cache or (``llm`` set) the LLM itself
    with the named facet set of ``kind``; and the LLM's directory."""
    if cfg.llm:
        enc = FacetEncoder(str(cfg.llm), facet_set(kind))
        langs = sorted(rows[0]["captions"])
        facets = {lang: enc.encode([r["captions"][lang][kind] for r in rows], 64) for lang in langs}
        llm = str(cfg.llm)
    else:
        cache = EmbeddingCache.open(str(cfg.cache))
        ids = [r["id"] for r in rows]
        facets = {lang: cache.lookup(ids, lang, kind) for lang in cache.langs(kind)}
        llm = cache.manifest.get("llm_path")
    return {lang: facet_query(f, "mean") for lang, f in centred(facets, str(cfg.center)).items()}, llm


def run(cfg: DictConfig) -> dict[str, Any]:
    torch.set_num_threads(int(cfg.threads))
    rows = read_rows(Path(str(cfg.captions)))[: int(cfg.n)]
    kind = str(cfg.kind)
    objects = [first_object(r) for r in rows]
    queries, llm = encoded(cfg, rows, kind)  # each [N, D]
    langs = sorted(queries)
    if str(cfg.source) not in langs:
        raise SystemExit(f"{cfg.llm or cfg.cache}: no {cfg.source} {kind} captions to compare with")
    result: dict[str, Any] = {"cache": None if cfg.llm else str(cfg.cache), "captions": str(cfg.captions),
                              "kind": kind, "rows": len(rows), "llm": llm, "langs": {}}
    cols = ["xling_r1", "cos_mean", "cos_nn", *(f"nn_{a}" for a in ATTRIBUTES)]
    print(f"{len(rows)} scenes of {cfg.captions}, {kind} captions, LLM {result['llm']}")
    print(f"{'lang':<10}" + "".join(f"{c:>12}" for c in cols))
    for lang in langs:
        m = space_stats(queries[lang], queries[str(cfg.source)], objects)
        result["langs"][lang] = m
        print(f"{lang:<10}" + "".join(f"{m[c]:>12.3f}" for c in cols), flush=True)
    chance = result["langs"][langs[0]]
    print(f"{'chance':<10}{'':>36}" + "".join(f"{chance[f'chance_{a}']:>12.3f}" for a in ATTRIBUTES))
    if cfg.output:
        with atomic_open(cfg.output, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
    return result


@hydra.main(version_base="1.3", config_path="../configs/benchmarks", config_name="flame_text_space")
def _cli(cfg: DictConfig) -> None:
    run(runner.require(cfg, "flame_text_space", "benchmarks"))


def main(argv: list[str]) -> dict[str, Any]:
    """``python benchmarks/flame_text_space.py`` in-process, ``argv`` its ``key=value`` words."""
    return runner.compose_and_run("flame_text_space", argv, run, runner.BENCHMARK_CONFIGS, "benchmarks")


if __name__ == "__main__":
    _cli()
