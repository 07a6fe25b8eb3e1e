"""Index a folder: every file a model's embedders read, embedded once per content, the index kept in step.

The index mirrors the folder: a re-run embeds only new or changed files (the cache is keyed by content hash),
appends them when nothing else changed, and otherwise rebuilds the faiss index from cached vectors (a changed or
removed file, another index type) without embedding anything again. Embedding runs on ``common.batch_job``: each
finished file is recorded in ``files.jsonl`` as it goes, so a killed run resumes; a bad file gets one line with
its reason in ``failed.jsonl`` and is left out.
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from common.batch_job import BatchJob, BatchReport, Failure, Item, JsonlOutput
from common.retrieval import index as faiss_index
from common.retrieval.embedders import Embedders
from common.retrieval.engine import MANIFEST, ModelRef, Retriever
from common.retrieval.index import IndexConfig, effective_nlist, normalize
from common.retrieval.store import EmbeddingStore, Source, file_sha256

log = logging.getLogger(__name__)
Row = dict[str, Any]


@dataclass
class IndexReport:
    """What ``index_folder`` did."""

    job: BatchReport
    """Files embedded now (``done``), reused from an earlier run, failed (with reasons)."""
    embedded: int = 0
    """Inputs (lines, images, ...) the model embedded in this run."""
    unknown: dict[str, int] = field(default_factory=dict)
    """Suffix -> count of the files no embedder of the model reads (left out)."""
    action: str = "unchanged"
    """``created``, ``appended``, ``rebuilt`` or ``unchanged``."""
    count: int = 0
    """Vectors in the index afterwards."""


def walk(input_path: Path, skip: Path) -> list[Path]:
    """Files under ``input_path`` (or the one file), leaving out hidden ones and the index folder ``skip``."""
    if input_path.is_file():
        return [input_path]
    if not input_path.is_dir():
        raise FileNotFoundError(f"input={input_path}: no such file or folder")
    skip = skip.resolve()
    return sorted(f for f in input_path.rglob("*") if f.is_file() and not f.resolve().is_relative_to(skip)
                  and not any(part.startswith(".") for part in f.relative_to(input_path).parts))


def plan(files: list[Path], root: Path, emb: Embedders) -> tuple[list[Item], dict[str, str], dict[str, int]]:
    """Items for the files the model reads (id = path relative to ``root``), their hashes, unknown suffixes."""
    items: list[Item] = []
    shas: dict[str, str] = {}
    unknown: Counter[str] = Counter()
    for f in files:
        kind = emb.kind_of(f)
        if kind is None:
            unknown[f.suffix.lower() or "(none)"] += 1
            continue
        rel = f.name if root.is_file() else f.relative_to(root).as_posix()
        try:
            shas[rel] = file_sha256(f)
            items.append(Item(rel, str(f), kind.modality))
        except OSError as e:
            items.append(Item(rel, str(f), kind.modality, error=f"unreadable ({e.strerror or e})"))
    return items, shas, dict(unknown)


class FileEmbedder:
    """``process`` for the batch job: cached files cost nothing, the rest are embedded a modality at a time."""

    def __init__(self, emb: Embedders, store: EmbeddingStore, shas: dict[str, str], dim: int | None):
        self.emb, self.store, self.shas, self.dim = emb, store, shas, dim
        self.embedded = 0

    def __call__(self, batch: list[Item]) -> list[Row | Failure]:
        out: list[Row | Failure] = []
        todo: dict[str, list[tuple[int, list[tuple[str, Any]]]]] = {}  # modality -> (position, entries)
        for n, it in enumerate(batch):
            kind = self.emb.kinds[it.payload]
            sha = self.shas[it.id]
            row: Row = {"sha256": sha, "modality": kind.modality}
            out.append(row)
            if sha in self.store:
                row["count"] = len(self.store.get(sha)[0])
                continue
            try:
                todo.setdefault(kind.modality, []).append((n, kind.read(Path(str(it.path)))))
            except (ValueError, OSError) as e:
                out[n] = Failure(str(e))
        for modality, files in todo.items():
            for (n, entries), vectors in zip(files, self._embed(modality, [e for _, e in files])):
                if isinstance(vectors, Failure):
                    out[n] = vectors
                    continue
                self.store.put(self.shas[batch[n].id], [k for k, _ in entries], vectors)
                done = out[n]
                assert isinstance(done, dict)
                done["count"] = len(entries)
        return out

    def _embed(self, modality: str, files: list[list[tuple[str, Any]]]) -> list[np.ndarray | Failure]:
        """One embed call for every file's inputs; if it fails, a call per file, so one bad file fails alone."""
        embedder = self.emb.get(modality)
        try:
            flat = self._checked(embedder.embed([x for entries in files for _, x in entries]), sum(map(len, files)))
        except Exception:  # any embedder error: retried per file to find the culprit
            if len(files) == 1:
                return [self._one(modality, files[0])]
            return [self._one(modality, entries) for entries in files]
        self.embedded += len(flat)
        bounds = np.cumsum([0, *(len(e) for e in files)])
        return [flat[a:b] for a, b in itertools.pairwise(bounds)]

    def _one(self, modality: str, entries: list[tuple[str, Any]]) -> np.ndarray | Failure:
        try:
            vectors = self._checked(self.emb.get(modality).embed([x for _, x in entries]), len(entries))
        except Exception as e:  # the embedder's own error is the file's reason
            return Failure(f"could not embed ({type(e).__name__}: {e})")
        self.embedded += len(vectors)
        return vectors

    def _checked(self, vectors: np.ndarray, n: int) -> np.ndarray:
        vectors = normalize(vectors)
        if len(vectors) != n:
            raise ValueError(f"the embedder returned {len(vectors)} vectors for {n} inputs")
        if self.dim is None:
            self.dim = vectors.shape[1]
        if vectors.shape[1] != self.dim:
            raise ValueError(f"vectors of width {vectors.shape[1]}, the index holds width {self.dim}")
        return vectors


def index_folder(input_path: str | Path, index_dir: str | Path, model: str | Path,
                 cfg: Mapping[str, Any] | None = None, chosen: Mapping[str, str] | None = None,
                 batch_size: int = 64, cache: str | Path | None = None, progress: bool = True) -> IndexReport:
    """Build or update the index at ``index_dir`` from ``input_path``; ``cfg`` sets index settings (None = keep)."""
    index_dir, input_path = Path(index_dir), Path(input_path)
    emb = Embedders(model, chosen)
    ref = ModelRef.of(emb)
    old = Retriever.from_pretrained(index_dir) if (index_dir / MANIFEST).is_file() else None
    if old is not None and old.model is not None and old.model.fingerprint != ref.fingerprint:
        raise ValueError(f"index={index_dir} holds vectors of another model ({old.model.path}); "
                         "index into a new folder, or delete this one to rebuild it")
    overrides = {k: v for k, v in (cfg or {}).items() if v is not None}
    base = old.cfg.__dict__ if old is not None else {}
    want = IndexConfig.from_dict({**base, **overrides})
    store = EmbeddingStore(Path(cache) if cache else index_dir / "cache" / ref.fingerprint[:16])

    items, shas, unknown = plan(walk(input_path, index_dir), input_path, emb)
    if unknown:
        listed = ", ".join(f"{s} ({n})" for s, n in sorted(unknown.items()))
        log.warning("left out %d file(s) that no embedder of model=%s reads: %s; it reads %s",
                    sum(unknown.values()), model, listed, ", ".join(sorted(emb.suffixes)))
    if not items:
        raise ValueError(emb.unknown_file(input_path) if input_path.is_file() else
                         f"input={input_path}: no files that model={model} reads ({', '.join(sorted(emb.suffixes))})")

    embed = FileEmbedder(emb, store, shas, old.dim if old is not None else None)
    index_dir.mkdir(parents=True, exist_ok=True)
    job = BatchJob(JsonlOutput(index_dir / "files.jsonl"), embed, batch_size=batch_size, progress=progress,
                   reuse=lambda r: shas.get(r["id"]) == r.get("sha256") and str(r["sha256"]) in store,
                   failed_path=index_dir / "failed.jsonl", desc="embedding", unit="file")
    report = IndexReport(job.run(items), unknown=unknown)
    report.embedded = embed.embedded
    rows = {r["id"]: r for r in job.output.previous()}
    files = [Source(it.id, rows[it.id]["sha256"], int(rows[it.id]["count"]), rows[it.id]["modality"])
             for it in items if it.id in rows]
    dim = embed.dim or (old.dim if old is not None else None)
    if dim is None:
        raise ValueError(f"input={input_path}: no file could be embedded (see {index_dir / 'failed.jsonl'})")
    retriever, report.action = update(old, files, want, ref, store, dim)
    retriever.source_root = (input_path.parent if input_path.is_file() else input_path).resolve()
    retriever.save(index_dir)
    report.count = len(retriever)
    return report


def update(old: Retriever | None, files: list[Source], want: IndexConfig, ref: ModelRef, store: EmbeddingStore,
           dim: int) -> tuple[Retriever, str]:
    """The index holding ``files`` (and the batches added by hand to ``old``): appended to when only new files
    came, rebuilt from the cache otherwise."""
    if old is not None:
        now = {(s.source, s.sha256) for s in files}
        kept = all((s.source, s.sha256) in now for s in old.sources if not s.added)
        cells = faiss_index.cells(old.index) if old.index is not None else None
        grown = cells is not None and cells < effective_nlist(want, sum(s.count for s in files))
        if kept and want == old.cfg and not grown:  # an IVF that outgrew its cells retrains them (rebuild)
            have = {(s.source, s.sha256) for s in old.sources}
            new = [s for s in files if (s.source, s.sha256) not in have]
            old.model = ref
            if not new and len(old.sources) - sum(s.added for s in old.sources) == len(files):
                return old, "unchanged"
            ids, vectors = store.ids_and_vectors(new, dim)
            old.append(ids, vectors, new)
            return old, "appended"
    added = [s for s in old.sources if s.added] if old is not None else []
    added_ids, added_vectors = old.source_vectors(added) if old is not None else ([], np.zeros((0, dim), np.float32))
    ids, vectors = store.ids_and_vectors(files, dim)
    retriever = Retriever(dim, want, ref, cache=store.root)
    retriever.append(added_ids + ids, np.concatenate([added_vectors, vectors]), added + files)
    return retriever, "rebuilt" if old is not None else "created"

