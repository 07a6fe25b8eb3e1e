"""Retrieval metrics from a query x candidate score matrix: recall@k, hit@k and MRR, any number of relevant candidates
per query (several captions of an image, several recordings of a score)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

from common.scoring import ArrayLike, as_numpy

Relevant = ArrayLike | Sequence[Iterable[int] | int]
QUERY_CHUNK = 1024  # queries sorted at once: bounds the [chunk, C] index arrays


def relevance_matrix(relevant: Relevant, shape: tuple[int, int]) -> np.ndarray:
    """Bool ``[Q, C]`` from a bool mask of that shape or, per query, the relevant candidate ids (an int or ids)."""
    q, c = shape
    if isinstance(relevant, np.ndarray | torch.Tensor):
        arr = as_numpy(relevant, "relevant")
        if arr.dtype == bool:
            if arr.shape != shape:
                raise ValueError(f"relevant is {arr.shape} but the scores are {shape}: need one row per query")
            return arr.copy()
        relevant = list(arr)  # ids: [Q] one per query, or [Q, k]
    ids = list(relevant)
    if len(ids) != q:
        raise ValueError(f"relevant ids are given for {len(ids)} queries but the scores have {q}")
    rel = np.zeros(shape, dtype=bool)
    for i, row in enumerate(ids):
        if isinstance(row, np.ndarray | torch.Tensor):
            cols = np.atleast_1d(as_numpy(row, "relevant"))
        else:
            cols = np.asarray(list(row) if isinstance(row, Iterable) else [row])
        if cols.dtype == bool:  # a list of bool rows would silently read as ids 0 and 1
            raise ValueError("a relevance mask must be a bool array or tensor of shape [Q, C], not a list")
        cols = cols.astype(np.int64)
        if cols.size and (cols.min() < 0 or cols.max() >= c):
            raise ValueError(f"query {i}: relevant ids must be candidate indices in [0, {c}), got {cols.tolist()}")
        rel[i, cols] = True
    return rel


def _ranked_hits(scores: ArrayLike, relevant: Relevant, ks: Sequence[int]) -> tuple[dict[int, np.ndarray],
                                                                                    np.ndarray, np.ndarray]:
    """Per query: relevant candidates in the top k (each k), the rank of the first one, and how many there are."""
    s = as_numpy(scores, "scores").astype(np.float64)
    if s.ndim != 2 or s.size == 0:
        raise ValueError(f"scores must be a non-empty [queries, candidates] matrix, got shape {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    if not ks or any(int(k) != k or k < 1 for k in ks):
        raise ValueError(f"k must be positive integers, got {list(ks)}")
    rel = relevance_matrix(relevant, (s.shape[0], s.shape[1]))
    n_rel = rel.sum(1)
    if (n_rel == 0).any():
        raise ValueError(f"query {int(np.argmin(n_rel))} has no relevant candidate")
    found = {k: np.zeros(s.shape[0], dtype=np.int64) for k in ks}
    first = np.zeros(s.shape[0], dtype=np.int64)
    for start in range(0, s.shape[0], QUERY_CHUNK):
        rows = slice(start, start + QUERY_CHUNK)
        # Best score first; among equal scores the irrelevant candidates go first, so ties never flatter a model
        # (one that scores everything alike ranks its relevant candidates last).
        order = np.lexsort((rel[rows], -s[rows]), axis=-1)  # [chunk, C]
        ranked = np.take_along_axis(rel[rows], order, axis=1)  # [chunk, C] relevance in rank order
        for k in ks:
            found[k][rows] = ranked[:, :k].sum(1)
        first[rows] = ranked.argmax(1) + 1
    return found, first, n_rel


def retrieval_metrics(scores: ArrayLike, relevant: Relevant, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """``recall@k`` and ``hit@k`` for each k, and ``mrr``, each a mean over the queries.

    Args:
        scores: ``[Q, C]``, higher is better.
        relevant: bool ``[Q, C]``, or per query the relevant candidate ids (an int or a list of ints).
        ks: cut-offs.

    recall@k is the share of a query's relevant candidates in its top k, hit@k whether any is, and MRR the mean of
    1 / rank of the first relevant candidate.
    """
    found, first, n_rel = _ranked_hits(scores, relevant, ks)
    out = {}
    for k in ks:
        out[f"recall@{k}"] = float((found[k] / n_rel).mean())
        out[f"hit@{k}"] = float((found[k] > 0).mean())
    out["mrr"] = float((1.0 / first).mean())
    return out


def recall_at_k(scores: ArrayLike, relevant: Relevant, k: int) -> float:
    """Mean over queries of the share of their relevant candidates that rank in the top ``k``."""
    return retrieval_metrics(scores, relevant, (k,))[f"recall@{k}"]


def hit_at_k(scores: ArrayLike, relevant: Relevant, k: int) -> float:
    """Share of the queries with at least one relevant candidate in the top ``k``."""
    return retrieval_metrics(scores, relevant, (k,))[f"hit@{k}"]


def mrr(scores: ArrayLike, relevant: Relevant) -> float:
    """Mean reciprocal rank of each query's first relevant candidate."""
    return retrieval_metrics(scores, relevant, (1,))["mrr"]
