"""faiss indexes by config: flat (exact), IVF and HNSW, all over inner product of L2-normalised vectors (cosine).

Exact search is the right choice up to about 100k vectors; above that IVF (``nlist`` cells, ``nprobe`` searched)
or HNSW (``m`` links, ``ef_construction`` / ``ef_search`` beam widths) trade a little recall for speed (see
docs/retrieval.md for measured figures).
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, cast

import faiss
import numpy as np

INDEX_TYPES = ("flat", "ivf", "hnsw")
METRIC = "inner_product"
"""Every index compares L2-normalised vectors by inner product, i.e. cosine similarity."""


@dataclass(frozen=True)
class IndexConfig:
    """Which faiss index to build and how to search it."""

    type: str = "flat"
    """``flat`` (exact), ``ivf`` (inverted file over k-means cells) or ``hnsw`` (navigable small-world graph)."""
    nlist: int = 1024
    """IVF: number of k-means cells; a set smaller than ``39 * nlist`` gets ``max(1, n // 39)`` cells instead."""
    nprobe: int = 32
    """IVF: cells searched per query (search time; more = higher recall, slower)."""
    m: int = 32
    """HNSW: graph links per node (build time and memory; more = higher recall)."""
    ef_construction: int = 200
    """HNSW: beam width while building."""
    ef_search: int = 128
    """HNSW: beam width while searching (search time; at least top_k is used)."""
    train_size: int = 100_000
    """IVF: most vectors k-means trains on (a random sample; training on every vector of 1M costs minutes)."""

    def __post_init__(self) -> None:
        if self.type not in INDEX_TYPES:
            raise ValueError(f"index type {self.type!r}: expected one of {', '.join(INDEX_TYPES)}")
        for f in ("nlist", "nprobe", "m", "ef_construction", "ef_search", "train_size"):
            if int(getattr(self, f)) < 1:
                raise ValueError(f"index {f} must be at least 1, got {getattr(self, f)}")

    def params(self) -> dict[str, int]:
        """The parameters that apply to this type (for the manifest and the benchmark table)."""
        keep = {"flat": (), "ivf": ("nlist", "nprobe", "train_size"), "hnsw": ("m", "ef_construction", "ef_search")}
        return {k: v for k, v in asdict(self).items() if k in keep[self.type]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IndexConfig:
        """From a manifest or a config mapping; unknown keys are an error, ``None`` values keep the default."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown index setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**{k: v for k, v in d.items() if v is not None})


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Float32, C-contiguous, each row of unit length; zero or non-finite rows are an error."""
    x = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise ValueError(f"vectors must be [N, D], got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("vectors hold NaN or infinite values")
    norms = np.linalg.norm(x, axis=1, keepdims=True)  # [N, 1]
    if len(x) and norms.min() == 0:
        raise ValueError(f"vector {int(np.argmin(norms))} is all zeros (no direction to compare)")
    return np.ascontiguousarray(x / norms)


def effective_nlist(cfg: IndexConfig, n: int) -> int:
    """IVF cells for ``n`` training vectors: faiss wants about 39 points a cell or its k-means is poor."""
    return max(1, min(cfg.nlist, n // 39))


def create(cfg: IndexConfig, dim: int, train: np.ndarray | None = None, seed: int = 0) -> faiss.Index:
    """An empty index ready for ``add``; IVF first trains ``effective_nlist`` cells on (a sample of) ``train``."""
    if cfg.type == "flat":
        return faiss.IndexFlatIP(dim)
    if cfg.type == "hnsw":
        hnsw = faiss.IndexHNSWFlat(dim, cfg.m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = cfg.ef_construction
        hnsw.hnsw.efSearch = cfg.ef_search
        return hnsw
    if train is None or len(train) == 0:
        raise ValueError("an IVF index needs vectors to train its cells on")
    if len(train) > cfg.train_size:
        train = train[np.random.default_rng(seed).choice(len(train), cfg.train_size, replace=False)]
    index = faiss.index_factory(dim, f"IVF{effective_nlist(cfg, len(train))},Flat", faiss.METRIC_INNER_PRODUCT)
    faiss.extract_index_ivf(index).cp.seed = seed
    index.train(normalize(train))
    set_search_params(index, cfg)
    return index


def cells(index: faiss.Index) -> int | None:
    """The IVF cells an index was trained with (fewer than ``nlist`` for a small set); ``None`` for other types."""
    try:
        return int(faiss.extract_index_ivf(index).nlist)
    except RuntimeError:
        return None


def set_search_params(index: faiss.Index, cfg: IndexConfig, top_k: int = 1) -> None:
    """Apply the search-time settings (IVF nprobe, HNSW efSearch); faiss does not keep all of them on disk."""
    if cfg.type == "ivf":
        ivf = faiss.extract_index_ivf(index)
        ivf.nprobe = min(cfg.nprobe, ivf.nlist)
    elif cfg.type == "hnsw":
        cast(faiss.IndexHNSWFlat, index).hnsw.efSearch = max(cfg.ef_search, top_k)


def search(index: faiss.Index, queries: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores and row numbers ``[Q, k]`` (k = min(top_k, size)); missing results (IVF with few cells) are -1."""
    k = min(top_k, index.ntotal)
    if k == 0:
        return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
    scores, rows = index.search(normalize(queries), k)
    return scores, rows


def write_atomic(index: faiss.Index, path: str | os.PathLike[str]) -> None:
    """``faiss.write_index`` to a temporary sibling, then rename: a reader never sees half an index."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        faiss.write_index(index, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read(path: str | os.PathLike[str]) -> faiss.Index:
    """A faiss index file; a missing or unreadable one raises ``ValueError`` naming it."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no faiss index there")
    try:
        return faiss.read_index(str(path))
    except RuntimeError as e:
        raise ValueError(f"{path}: not a readable faiss index ({str(e).splitlines()[0]})") from None


def auto_nlist(n: int) -> int:
    """The usual IVF size for ``n`` vectors, about 4 * sqrt(n), as a power of two."""
    return 2 ** max(0, round(math.log2(4 * math.sqrt(max(n, 1)))))
