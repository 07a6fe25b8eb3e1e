"""``Retriever``: a faiss index, the ids of its rows, and the model that embeds queries; saved as a directory.

An index directory holds ``manifest.json`` (format, model identity, dim, metric, index type and parameters, count,
and the names of the other files), ``index.faiss``, ``ids.txt`` (one id a line, row order), ``sources.jsonl``
(which file or added batch each run of rows came from, with its content hash) and the embedding cache
(``store.py``). Every file is written atomically and the manifest last; a load checks they agree.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from common.io import atomic_open, read_json_object, read_jsonl_lenient, write_jsonl
from common.retrieval import index as faiss_index
from common.retrieval.embedders import Embedders, model_fingerprint
from common.retrieval.index import IndexConfig, normalize
from common.retrieval.store import EmbeddingStore, Source, vectors_sha256

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
Hit = tuple[str, float]


@dataclass(frozen=True)
class ModelRef:
    """The model whose vectors an index holds."""

    path: str
    """Its directory (absolute)."""
    fingerprint: str
    """``embedders.model_fingerprint``: queries embedded by a changed model are refused."""
    embedders: dict[str, str]
    """Modality -> registered embedder name used to build the index."""

    @classmethod
    def of(cls, embedders: Embedders) -> ModelRef:
        path = str(Path(embedders.model_dir).resolve())
        return cls(path, model_fingerprint(path), {m: k.name for m, k in embedders.kinds.items()})


class Retriever:
    """Nearest-neighbour search over L2-normalised vectors by cosine similarity; see the module docstring."""

    def __init__(self, dim: int, cfg: IndexConfig | None = None, model: ModelRef | None = None,
                 index: faiss.Index | None = None, ids: Sequence[str] = (), sources: Sequence[Source] = (),
                 cache: str | Path | None = None, source_root: str | Path | None = None):
        if dim < 1:
            raise ValueError(f"dim must be positive, got {dim}")
        self.dim, self.cfg, self.model = dim, cfg or IndexConfig(), model
        if index is None and self.cfg.type != "ivf":
            index = faiss_index.create(self.cfg, dim)
        self.index: faiss.Index | None = index
        """``None`` only for an IVF index that has not seen vectors to train its cells on yet."""
        self.ids: list[str] = list(ids)
        self.sources: list[Source] = list(sources)
        self.cache = None if cache is None else Path(cache)
        """Where the vectors of ``sources`` are kept (``None``: ``<dir>/cache/vectors`` on the first save)."""
        self.source_root = None if source_root is None else Path(source_root)
        """The folder that file ids are relative to (set by the folder indexer), so results can be opened."""
        self._positions = {i: n for n, i in enumerate(self.ids)}
        self._pending: list[tuple[Source, list[str], np.ndarray]] = []  # added batches not yet in the cache
        self._embedders: Embedders | None = None
        self.chosen: dict[str, str] = dict(model.embedders) if model else {}

    def __len__(self) -> int:
        return len(self.ids)

    # Building.

    @classmethod
    def build(cls, ids: Sequence[str], vectors: np.ndarray, cfg: IndexConfig | None = None) -> Retriever:
        """An index over ``vectors`` ``[N, D]`` with these ids (no model: queries must be vectors)."""
        vectors = normalize(vectors)
        r = cls(vectors.shape[1], cfg)
        r.add(ids, vectors)
        return r

    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Append vectors ``[N, D]`` under new, unique ids; they reach the cache (and survive rebuilds) on save."""
        ids = [str(i) for i in ids]
        vectors = self._check(ids, vectors)
        n = len(self._pending) + sum(s.added for s in self.sources)
        source = Source(f"added:{n}", vectors_sha256(ids, vectors), len(ids))
        self._pending.append((source, ids, vectors))
        self.append(ids, vectors, [source])

    def append(self, ids: list[str], vectors: np.ndarray, sources: list[Source]) -> None:
        """Add rows whose vectors the cache already holds (the folder indexer); ``add`` for anything else."""
        vectors = self._check(ids, vectors)
        self.sources += sources
        if not ids:
            return
        if self.index is None:  # an IVF index trains its cells on the first vectors it gets
            self.index = faiss_index.create(self.cfg, self.dim, vectors)
        self.index.add(vectors)
        for i in ids:
            self._positions[i] = len(self.ids)
            self.ids.append(i)

    def _check(self, ids: list[str], vectors: np.ndarray) -> np.ndarray:
        vectors = normalize(vectors)
        if vectors.shape != (len(ids), self.dim):
            raise ValueError(f"expected {len(ids)} vectors of width {self.dim}, got shape {vectors.shape}")
        bad = [i for i in ids if "\n" in i or not i]
        if bad:
            raise ValueError(f"ids must be non-empty single lines, got {bad[0]!r}")
        dup = next((i for i in ids if i in self._positions), None) or next(
            (i for n, i in enumerate(ids) if i in ids[:n]), None)
        if dup is not None:
            raise ValueError(f"id {dup!r} is already in the index")
        return vectors

    # Searching.

    def embedders(self) -> Embedders:
        """The index's model, loaded on first need; a model changed since the index was built is refused."""
        if self._embedders is None:
            if self.model is None:
                raise ValueError("this index names no model: search it with vectors, or give model=<dir>")
            if Path(self.model.path).is_dir() and model_fingerprint(self.model.path) != self.model.fingerprint:
                raise ValueError(f"model={self.model.path} has changed since the index was built; "
                                 "re-run retrieve.py index (unchanged files are not embedded again)")
            self._embedders = Embedders(self.model.path, self.chosen)
        return self._embedders

    def use_model(self, model_dir: str | Path, chosen: Mapping[str, str] | None = None) -> None:
        """Embed queries with ``model_dir`` (a copy of the indexing model elsewhere, or a compatible one)."""
        self._embedders = Embedders(model_dir, chosen or self.chosen)

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """``[Q, D]`` normalised query vectors from the model's text embedder."""
        return normalize(self.embedders().get("text").embed(list(texts)))

    def embed_file(self, path: str | Path) -> np.ndarray:
        """``[n, D]``: the inputs one file holds (a text file: its lines), by the embedder its suffix picks."""
        emb = self.embedders()
        kind = emb.kind_of(path)
        if kind is None:
            raise ValueError(emb.unknown_file(path))
        try:
            entries = kind.read(Path(path))
        except (ValueError, OSError) as e:
            raise ValueError(f"{path}: {e}") from None
        return normalize(emb.get(kind.modality).embed([x for _, x in entries]))

    def search(self, queries: np.ndarray | list[str], top_k: int = 10) -> list[list[Hit]]:
        """Per query, up to ``top_k`` ``(id, cosine score)`` pairs, best first; strings are embedded as text."""
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        vectors = self.embed_texts(queries) if isinstance(queries, list) else normalize(queries)
        if vectors.shape[1] != self.dim:
            raise ValueError(f"queries have width {vectors.shape[1]}, the index holds width {self.dim}")
        if self.index is None or len(self) == 0:
            return [[] for _ in vectors]
        faiss_index.set_search_params(self.index, self.cfg, top_k)
        scores, rows = faiss_index.search(self.index, vectors, top_k)  # [Q, k]
        return [[(self.ids[r], float(s)) for s, r in zip(srow, rrow) if r >= 0] for srow, rrow in zip(scores, rows)]

    def source_vectors(self, sources: Sequence[Source] | None = None) -> tuple[list[str], np.ndarray]:
        """The ids and vectors of ``sources`` (default all), from the cache or not-yet-saved additions."""
        pending = {s.sha256: (ids, vecs) for s, ids, vecs in self._pending}
        ids: list[str] = []
        parts: list[np.ndarray] = []
        for s in self.sources if sources is None else sources:
            if s.sha256 in pending:
                got_ids, got = pending[s.sha256]
            elif self.cache is None:
                raise ValueError("no embedding cache to read the index's vectors from")
            else:
                got_ids, got = EmbeddingStore(self.cache).ids_and_vectors([s], self.dim)
            ids, parts = ids + got_ids, [*parts, got]
        return ids, (np.concatenate(parts) if parts else np.zeros((0, self.dim), np.float32))

    # Saving and loading.

    def save(self, path: str | Path) -> None:
        """Write the index directory (see the module docstring); the manifest goes last."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if self.cache is None:
            self.cache = path / "cache" / "vectors"
        store = EmbeddingStore(self.cache)
        for source, ids, vectors in self._pending:
            store.put(source.sha256, ids, vectors)
        self._pending.clear()
        if self.index is not None:
            faiss_index.write_atomic(self.index, path / "index.faiss")
        with atomic_open(path / "ids.txt", "w", encoding="utf-8") as f:
            f.write("".join(f"{i}\n" for i in self.ids))
        write_jsonl(path / "sources.jsonl", [asdict(s) for s in self.sources])
        cache = self.cache.resolve()
        manifest = {
            "format_version": FORMAT_VERSION, "model": asdict(self.model) if self.model else None, "dim": self.dim,
            "metric": faiss_index.METRIC, "type": self.cfg.type, "params": self.cfg.params(), "count": len(self),
            "ivf_cells": faiss_index.cells(self.index) if self.index is not None else None,
            "index_file": "index.faiss" if self.index is not None else None, "ids_file": "ids.txt",
            "sources_file": "sources.jsonl",
            "cache": str(cache.relative_to(path.resolve()) if cache.is_relative_to(path.resolve()) else cache),
            "source_root": str(self.source_root.resolve()) if self.source_root is not None else None,
        }
        with atomic_open(path / MANIFEST, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2, ensure_ascii=False)

    @classmethod
    def from_pretrained(cls, path: str | Path, model: str | Path | None = None,
                        embedders: Mapping[str, str] | None = None) -> Retriever:
        """Load an index directory; ``model`` replaces the model it names for embedding queries (loaded lazily)."""
        path = Path(path)
        manifest = read_manifest(path)
        try:
            cfg = IndexConfig.from_dict({"type": manifest["type"], **manifest.get("params", {})})
            ref = ModelRef(**manifest["model"]) if manifest.get("model") else None
            dim, count = int(manifest["dim"]), int(manifest["count"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path / MANIFEST}: broken manifest ({e})") from None
        index = faiss_index.read(path / manifest["index_file"]) if manifest.get("index_file") else None
        ids = (path / manifest["ids_file"]).read_text(encoding="utf-8").splitlines()
        sources = [Source(**row) for row in read_jsonl_lenient(path / manifest["sources_file"])]
        sizes = {"manifest count": count, "ids": len(ids), "index rows": index.ntotal if index is not None else 0,
                 "sources": sum(s.count for s in sources)}
        if len(set(sizes.values())) != 1 or (index is not None and index.d != dim):
            raise ValueError(f"{path}: index files disagree ({', '.join(f'{k} {v}' for k, v in sizes.items())}, "
                             f"dim {dim}); an interrupted write? Rebuild it with scripts/retrieve.py index")
        cache = Path(manifest["cache"])
        root = manifest.get("source_root")
        r = cls(dim, cfg, ref, index, ids, sources, cache if cache.is_absolute() else path / cache,
                Path(root) if isinstance(root, str) else None)
        if model is not None:
            r.use_model(model, embedders)
        elif embedders:
            r.chosen.update(embedders)
        return r


def read_manifest(path: Path) -> dict[str, Any]:
    """An index directory's manifest; a missing one or a newer format is a clear error."""
    if not (path / MANIFEST).is_file():
        raise FileNotFoundError(f"index={path}: no {MANIFEST} there (build one with scripts/retrieve.py index)")
    manifest = read_json_object(path / MANIFEST)
    if int(manifest.get("format_version", 0)) > FORMAT_VERSION:
        raise ValueError(f"{path / MANIFEST}: format_version {manifest['format_version']} is newer than this "
                         f"code reads ({FORMAT_VERSION})")
    return manifest


def source_root(path: str | Path) -> Path | None:
    """The folder an index directory was built from (``None``: built from added vectors, an older index, or an
    unreadable manifest), without loading the index."""
    try:
        root = read_manifest(Path(path)).get("source_root")
    except (OSError, ValueError):
        return None
    return Path(root) if isinstance(root, str) else None


def with_search_params(r: Retriever, overrides: Mapping[str, Any]) -> Retriever:
    """Apply search-time overrides (``nprobe``, ``ef_search``) given as non-null values."""
    keep = {k: v for k, v in overrides.items() if v is not None and k in ("nprobe", "ef_search")}
    if keep:
        r.cfg = replace(r.cfg, **keep)
    return r
