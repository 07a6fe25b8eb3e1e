"""Evaluate an index against labelled queries: recall@k, hit@k and MRR (``common.metrics_retrieval``).

The queries file is JSONL, one object a line: ``{"query": "text"}`` or ``{"query_file": "path"}`` (relative to
the queries file), and ``"relevant"``: the id, or a list of the ids, that should come back. Each query is
searched to ``depth`` results; recall@k and hit@k are exact for every k up to ``depth``, and a relevant item
found deeper counts as ranked below everything searched (its share of MRR is at most 1 / (depth + 1)).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from common.metrics_retrieval import retrieval_metrics
from common.retrieval.engine import Retriever

log = logging.getLogger(__name__)


@dataclass
class Query:
    """One labelled query from the file."""

    where: str
    """``<file>:<line>``, for messages."""
    text: str | None
    file: Path | None
    relevant: list[str]


@dataclass
class EvalReport:
    """Metrics over the queries that could be run, and the ones that could not."""

    metrics: dict[str, float]
    queries: int
    depth: int
    failed: list[dict[str, str]] = field(default_factory=list)


def read_queries(path: str | Path, known: set[str]) -> tuple[list[Query], list[dict[str, str]]]:
    """Good queries, and ``{"where", "reason"}`` for each bad line (bad JSON, no query, unknown relevant ids)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"queries={path}: no such file")
    good: list[Query] = []
    bad: list[dict[str, str]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{path}:{n}"
        try:
            q = parse(json.loads(line), path.parent, known)
        except (json.JSONDecodeError, ValueError) as e:
            bad.append({"where": where, "reason": str(e)})
            continue
        q.where = where
        good.append(q)
    return good, bad


def parse(row: Any, root: Path, known: set[str]) -> Query:
    if not isinstance(row, dict):
        raise ValueError(f"expected a JSON object, got {type(row).__name__}")
    text, file = row.get("query"), row.get("query_file")
    if (text is None) == (file is None) or not isinstance(text or file, str) or not (text or file):
        raise ValueError("needs exactly one of 'query' (text) and 'query_file' (a path), a non-empty string")
    rel = row.get("relevant")
    rel = [rel] if isinstance(rel, str | int) else rel
    if not isinstance(rel, list) or not rel:
        raise ValueError("needs 'relevant': an id or a non-empty list of ids")
    rel = [str(r) for r in rel]
    missing = [r for r in rel if r not in known]
    if missing:
        raise ValueError(f"relevant id(s) not in the index: {', '.join(map(repr, missing[:5]))}")
    return Query("", text, (root / file) if file else None, rel)


def evaluate(retriever: Retriever, queries_path: str | Path, ks: Sequence[int] = (1, 5, 10),
             depth: int = 100) -> EvalReport:
    """Search every query of the file and score the ranked lists."""
    depth = max(depth, *ks)
    queries, failed = read_queries(queries_path, set(retriever.ids))
    vectors: list[np.ndarray] = []
    kept: list[Query] = []
    texts = [q for q in queries if q.text is not None]
    if texts:
        vectors += list(retriever.embed_texts([str(q.text) for q in texts]))
        kept += texts
    for q in (q for q in queries if q.file is not None):
        try:
            v = retriever.embed_file(str(q.file))
        except (ValueError, OSError) as e:
            failed.append({"where": q.where, "reason": str(e)})
            continue
        if len(v) != 1:
            failed.append({"where": q.where, "reason": f"{q.file} holds {len(v)} inputs; a query needs one"})
            continue
        vectors.append(v[0])
        kept.append(q)
    for f in failed:
        log.warning("skipping %s: %s", f["where"], f["reason"])
    if not kept:
        raise ValueError(f"queries={queries_path}: no query could be run")
    hits = retriever.search(np.stack(vectors), depth)
    scores, relevant = ranked_matrix(hits, [q.relevant for q in kept])
    return EvalReport(retrieval_metrics(scores, relevant, ks), len(kept), depth, failed)


def ranked_matrix(hits: list[list[tuple[str, float]]], relevant: list[list[str]]) -> tuple[np.ndarray, list[list[int]]]:
    """Scores ``[Q, W]`` and relevant columns: each row holds its query's results, then its relevant ids that were
    not found, then filler, the last two below every result (so they rank after all that was searched)."""
    missing = [[r for r in rel if r not in {i for i, _ in h}] for h, rel in zip(hits, relevant)]
    width = max(len(h) + len(m) for h, m in zip(hits, missing))
    scores = np.zeros((len(hits), width))
    cols: list[list[int]] = []
    for q, (h, rel, miss) in enumerate(zip(hits, relevant, missing)):
        found = [s for _, s in h]
        floor = (min(found) if found else 0.0) - 1.0
        scores[q, : len(h)] = found
        scores[q, len(h):] = floor
        wanted = set(rel)
        cols.append([c for c, (i, _) in enumerate(h) if i in wanted] + list(range(len(h), len(h) + len(miss))))
    return scores, cols
