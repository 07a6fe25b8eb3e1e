"""The embedding cache of an index: the vectors of every indexed file (or added batch), keyed by content hash.

One ``<sha[:2]>/<sha>.npz`` per source holds ``keys`` (the entries' keys: line numbers, or "" for a whole file)
and ``vectors`` ``[n, D]`` (normalised float32). The cache lives under the model's fingerprint, so a file that
has not changed is never embedded twice by the same model, and another model never reuses it. Rebuilding an
index (another type, a removed or changed file) reads vectors from here instead of embedding again.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.io import atomic_open


def file_sha256(path: str | os.PathLike[str], block: int = 1 << 20) -> str:
    """The hex SHA-256 of a file's bytes, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def vectors_sha256(ids: list[str], vectors: np.ndarray) -> str:
    """A content hash for vectors given directly (``Retriever.add``), ids included."""
    h = hashlib.sha256("\n".join(ids).encode("utf-8"))
    h.update(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
    return h.hexdigest()


def item_id(source: str, key: str) -> str:
    """The id of one indexed entry: the source (a file path relative to the input folder), ``:key`` for a part."""
    return f"{source}:{key}" if key else source


@dataclass(frozen=True)
class Source:
    """One group of vectors in an index: an indexed file, or a batch added through ``Retriever.add``."""

    source: str
    """The file's path relative to the indexed folder, or ``added:<n>`` for a batch of vectors."""
    sha256: str
    """Content hash; the key of the cached vectors."""
    count: int
    """Vectors it holds."""
    modality: str = ""
    """The embedder's modality (files only)."""

    @property
    def added(self) -> bool:
        return self.source.startswith("added:")


class EmbeddingStore:
    """Cached vectors by content hash, one ``.npz`` file each, written atomically."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def path(self, sha: str) -> Path:
        return self.root / sha[:2] / f"{sha}.npz"

    def __contains__(self, sha: str) -> bool:
        return self.path(sha).is_file()

    def put(self, sha: str, keys: list[str], vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(keys):
            raise ValueError(f"expected one vector per key ({len(keys)}), got shape {vectors.shape}")
        with atomic_open(self.path(sha), "wb") as f:
            np.savez(f, keys=np.asarray(keys, dtype=str), vectors=vectors)

    def get(self, sha: str) -> tuple[list[str], np.ndarray]:
        """The keys and ``[n, D]`` vectors stored under ``sha``; a missing or broken entry raises naming it."""
        path = self.path(sha)
        try:
            with np.load(path, allow_pickle=False) as z:
                return [str(k) for k in z["keys"]], np.asarray(z["vectors"], dtype=np.float32)
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: cached embeddings missing (was the cache deleted?)") from None
        except (OSError, ValueError, KeyError) as e:
            raise ValueError(f"{path}: broken cache entry ({e})") from None

    def ids_and_vectors(self, sources: list[Source], dim: int) -> tuple[list[str], np.ndarray]:
        """Every entry of ``sources``, in order: ids and ``[N, dim]`` vectors."""
        ids: list[str] = []
        parts: list[np.ndarray] = []
        for s in sources:
            keys, vecs = self.get(s.sha256)
            if vecs.shape != (s.count, dim):
                raise ValueError(f"{self.path(s.sha256)}: holds {vecs.shape}, expected ({s.count}, {dim})")
            ids += keys if s.added else [item_id(s.source, k) for k in keys]
            parts.append(vecs)
        return ids, (np.concatenate(parts) if parts else np.zeros((0, dim), np.float32))
