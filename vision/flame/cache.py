"""FLAME's offline text embeddings: every caption's facet vectors computed once, read memory-mapped in training.

Layout of a cache directory::

    manifest.json                what made it: LLM fingerprint, prompt set per caption kind, caption length, dtypes
    <kind>/shard-00000.npy       [N, K, D] facet vectors of up to ``shard_size`` (row, language) pairs
    <kind>/shard-00000.ids.txt   "<row id>\\t<lang>" of each vector, one a line
    index.json                   kind -> shard files, facet names, lang -> row id -> [shard, offset]; written last
    failed.jsonl                 bad input lines and captions, one {id, path, reason} a line

Each shard is one ``common.batch_job`` job: vectors land in its partial file as they are made, the shard file is
written atomically, and a re-run skips finished shards and finished rows. Training opens the cache with
``EmbeddingCache.open(dir, expect=...)``, which refuses a cache made by another LLM or other prompts.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from common.batch_job import BatchJob, BatchReport, Failure, Item, NpyOutput, Row, ids_path
from common.io import atomic_open, read_json_object, write_jsonl
from vision.flame.facets import FacetPrompts

MANIFEST, INDEX, FAILED = "manifest.json", "index.json", "failed.jsonl"
FORMAT_VERSION = 1
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
SAMPLE_BYTES = 1 << 20
"""How much of each end of a weights file the fingerprint reads: cheap, and any retraining changes it."""

Encode = Callable[[str, list[str]], Tensor]
"""(caption kind, captions) -> ``[B, K, D]`` facet vectors; the kind picks the prompt set."""


class StaleCacheError(ValueError):
    """The cache was made with another LLM, other prompts or other settings than asked for."""


def llm_fingerprint(model_dir: str | Path) -> str:
    """A hash of the LLM directory's config, tokenizer files and weight files (sizes and both ends)."""
    root = Path(model_dir)
    if not (root / "config.json").is_file():
        raise FileNotFoundError(f"{root}: not a model directory (no config.json there)")
    h = hashlib.sha256()
    for f in sorted(p for p in root.iterdir() if p.is_file()):
        if f.suffix == ".json" or f.name.startswith("tokenizer"):
            h.update(f.name.encode() + b"\0" + f.read_bytes())
        elif f.suffix in WEIGHT_SUFFIXES:
            size = f.stat().st_size
            with open(f, "rb") as fh:
                head = fh.read(SAMPLE_BYTES)
                fh.seek(max(size - SAMPLE_BYTES, 0))
                tail = fh.read(SAMPLE_BYTES)
            h.update(f"{f.name}\0{size}\0".encode() + head + tail)
    return h.hexdigest()[:32]


def cache_manifest(llm: str, prompts: Mapping[str, FacetPrompts], max_caption_tokens: int, normalize: bool = True,
                   llm_dtype: str = "float32", store_dtype: str = "float16", shard_size: int = 4096,
                   llm_path: str | None = None) -> dict[str, Any]:
    """What a cache records about how it was made; ``llm`` is ``llm_fingerprint(model_dir)``."""
    return {"format_version": FORMAT_VERSION, "llm": llm, "llm_path": llm_path,
            "prompts": {k: p.identity() for k, p in prompts.items()}, "max_caption_tokens": max_caption_tokens,
            "normalize": normalize, "llm_dtype": llm_dtype, "store_dtype": store_dtype, "shard_size": shard_size}


IDENTITY = ("llm", "prompts", "max_caption_tokens", "normalize", "llm_dtype", "store_dtype", "shard_size")
"""Manifest keys that must agree before a build may extend a cache (``llm_path`` is only informational)."""


def _first_difference(a: Any, b: Any, where: str) -> str | None:
    """The path of the first place two JSON values differ, with both values there."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in [*a, *(k for k in b if k not in a)]:
            if (d := _first_difference(a.get(k), b.get(k), f"{where}.{k}")) is not None:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b)):
            if (d := _first_difference(x, y, f"{where}[{i}]")) is not None:
                return d
        return None if len(a) == len(b) else f"{where}: cache has {len(a)} entries, expected {len(b)}"
    return None if a == b else f"{where}: cache has {a!r}, expected {b!r}"


def check_manifest(root: Path, found: Mapping[str, Any], expect: Mapping[str, Any]) -> None:
    """Raise ``StaleCacheError`` naming what differs; ``prompts`` is checked for the caption kinds in ``expect``."""
    for key, want in expect.items():
        have = found.get(key)
        if key == "prompts":
            have = have or {}
            for kind, p in want.items():
                if kind not in have:
                    raise StaleCacheError(f"stale cache {root}: it holds no {kind!r} captions (has "
                                          f"{', '.join(have) or 'none'}); build them with scripts/flame_cache.py")
                if (d := _first_difference(have[kind], p, f"prompts.{kind}")) is not None:
                    raise StaleCacheError(f"stale cache {root}: other facet prompts ({d}); rebuild it")
        elif have != want:
            what = "another LLM" if key == "llm" else f"another {key}"
            raise StaleCacheError(f"stale cache {root}: made with {what} (cache has {have!r}, expected {want!r}); "
                                  f"rebuild it (scripts/flame_cache.py ... overwrite=true)")


@dataclass
class Captions:
    """Caption items by kind (id ``<row id>\\t<lang>``, payload the text) and the input lines that were bad."""

    items: dict[str, list[Item]]
    bad: list[Row] = field(default_factory=list)
    rows: int = 0
    """Good input rows."""


def caption_files(input_path: str | Path) -> list[Path]:
    """A captions JSONL, or every ``captions.jsonl`` under a corpus folder."""
    p = Path(input_path)
    # Hidden folders hold splits still being written (a corpus builder renames them into place when complete).
    files = (sorted(f for f in p.rglob("captions.jsonl") if not any(x.startswith(".") for x in f.relative_to(p).parts))
             if p.is_dir() else [p] if p.is_file() else [])
    if not files:
        raise FileNotFoundError(f"{p}: no captions JSONL there" + (" (no captions.jsonl below it)" if p.is_dir()
                                                                   else ""))
    return files


def read_captions(input_path: str | Path, kinds: Sequence[str], langs: Sequence[str] | None = None) -> Captions:
    """Rows ``{"id", "captions": {lang: {kind: text}}}``; a bad line is listed once in ``bad`` and skipped."""
    out = Captions({k: [] for k in kinds})
    for path in caption_files(input_path):
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
                problem = None
            except json.JSONDecodeError as e:
                row, problem = None, f"invalid JSON ({e.msg})"
            if problem is None and not isinstance(row, dict):
                problem = "expected a JSON object"
            elif problem is None and (not isinstance(row.get("id"), (str, int)) or isinstance(row["id"], bool)
                                      or any(c in str(row["id"]) for c in "\t\n") or str(row["id"]) == ""):
                problem = "missing or bad field 'id' (a string or integer without tabs or line breaks)"
            elif problem is None and not isinstance(row.get("captions"), dict):
                problem = "missing field 'captions' ({lang: {kind: text}})"
            if problem is not None:
                out.bad.append({"id": where, "path": str(path), "reason": f"{where}: {problem}"})
                continue
            out.rows += 1
            for lang, by_kind in row["captions"].items():
                if langs and lang not in langs:
                    continue
                for kind in kinds:
                    text = by_kind.get(kind) if isinstance(by_kind, dict) else None
                    if isinstance(by_kind, dict) and kind not in by_kind:
                        continue  # rows need not carry every kind
                    ok = isinstance(text, str) and text.strip()
                    error = None if ok else f"{where}: {lang} {kind} caption is not a non-empty string"
                    out.items[kind].append(Item(f"{row['id']}\t{lang}", str(path), text, error=error))
    return out


class BuildReport(BatchReport):
    """What a build did, over every shard of every kind (the batch-job report, in the cache's words)."""

    def summary(self) -> str:
        return (f"{self.done} encoded, {self.skipped_existing} already cached, {len(self.failed)} failed "
                f"in {self.seconds:.1f} s")


def _shard(root: Path, kind: str, i: int) -> Path:
    return root / kind / f"shard-{i:05d}.npy"


def _open_for_build(root: Path, manifest: dict[str, Any], overwrite: bool) -> dict[str, Any]:
    """The manifest to write: the new one, merged with the prompts of kinds an earlier compatible build made."""
    old_path = root / MANIFEST
    if not old_path.is_file():
        return manifest
    if overwrite:
        for f in [old_path, root / INDEX, root / FAILED, *root.glob("*/shard-*")]:
            f.unlink(missing_ok=True)
        return manifest
    old = read_json_object(old_path)
    check_manifest(root, old, {k: manifest[k] for k in IDENTITY if k != "prompts"})
    shared = {k: p for k, p in manifest["prompts"].items() if k in old.get("prompts", {})}
    check_manifest(root, old, {"prompts": shared})
    return {**manifest, "prompts": {**old["prompts"], **manifest["prompts"]}}


def build_cache(root: str | Path, captions: Captions, encode: Encode, manifest: dict[str, Any],
                batch_size: int = 32, progress: bool = True, overwrite: bool = False) -> BuildReport:
    """Encode every unfinished caption of ``captions`` into the cache at ``root``; see the module docstring."""
    root, start, report = Path(root), time.monotonic(), BuildReport()
    manifest = _open_for_build(root, manifest, overwrite)
    (root / INDEX).unlink(missing_ok=True)  # an interrupted build must not be opened with an old index
    with atomic_open(root / MANIFEST, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, ensure_ascii=False)
    size = int(manifest["shard_size"])
    failed = list(captions.bad)
    for kind, items in captions.items.items():

        def process(batch: list[Item], kind: str = kind) -> list[Row | Failure]:
            emb = encode(kind, [it.payload for it in batch]).float().cpu().numpy()  # [B, K, D]
            return [{"embedding": e.tolist()} for e in emb]  # float32 -> JSON floats round-trip exactly

        n = math.ceil(len(items) / size)
        for i in range(n):
            chunk, path = items[i * size : (i + 1) * size], _shard(root, kind, i)
            want = [it.id for it in chunk]
            if ids_path(path).is_file() and ids_path(path).read_text(encoding="utf-8").splitlines() == want:
                report.skipped_existing += len(chunk)
                continue
            job = BatchJob(NpyOutput(path, dtype=manifest["store_dtype"]), process, batch_size=batch_size,
                           failed_path=path.with_suffix(".failed.jsonl"), progress=progress,
                           desc=f"{kind} shard {i + 1}/{n}", unit="caption")
            r = job.run(chunk)
            path.with_suffix(".failed.jsonl").unlink(missing_ok=True)  # merged into the cache's failed.jsonl
            report.done, report.skipped_existing = report.done + r.done, report.skipped_existing + r.skipped_existing
            failed += r.failed
        for leftover in (root / kind).glob("shard-*"):  # shards of an earlier, longer input
            if int(leftover.name.split(".")[0].split("-")[1]) >= n:
                leftover.unlink()
    write_jsonl(root / FAILED, failed)
    write_index(root, manifest)
    report.failed, report.seconds = failed, time.monotonic() - start
    return report


def write_index(root: Path, manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Index every shard on disk of every kind the manifest knows; written last, so its presence means complete."""
    index: dict[str, Any] = {}
    for kind, prompts in manifest["prompts"].items():
        shards = sorted((root / kind).glob("shard-*.npy"))
        rows: dict[str, dict[str, list[int]]] = {}
        dims = {np.load(p, mmap_mode="r").shape[-1] for p in shards if np.load(p, mmap_mode="r").size}
        for s, path in enumerate(shards):
            for offset, key in enumerate(ids_path(path).read_text(encoding="utf-8").splitlines()):
                row_id, lang = key.split("\t")
                rows.setdefault(lang, {})[row_id] = [s, offset]
        index[kind] = {"shards": [str(p.relative_to(root)) for p in shards],
                       "facets": [n for n, _ in prompts["facets"]], "dim": max(dims, default=0), "rows": rows}
    with atomic_open(root / INDEX, "w", encoding="utf-8") as f:
        json.dump(index, f, ensure_ascii=False)
    return index


class EmbeddingCache:
    """Read-only view of a finished cache: facet vectors by row id, language and caption kind, memory-mapped."""

    def __init__(self, root: Path, manifest: dict[str, Any], index: dict[str, Any]):
        self.root, self.manifest, self.index = root, manifest, index
        self._arrays: dict[str, np.ndarray] = {}

    @classmethod
    def open(cls, root: str | Path, expect: Mapping[str, Any] | None = None) -> EmbeddingCache:
        """Open ``root``; ``expect`` holds manifest values that must match (``cache_manifest`` keys)."""
        root = Path(root)
        if not (root / MANIFEST).is_file():
            raise FileNotFoundError(f"{root}: not an embedding cache (no {MANIFEST}); build one with "
                                    "scripts/flame_cache.py")
        manifest = read_json_object(root / MANIFEST)
        if manifest.get("format_version") != FORMAT_VERSION:
            raise StaleCacheError(f"stale cache {root}: format_version {manifest.get('format_version')!r}, this "
                                  f"code reads {FORMAT_VERSION}; rebuild it")
        check_manifest(root, manifest, expect or {})
        if not (root / INDEX).is_file():
            raise FileNotFoundError(f"{root}: incomplete embedding cache (no {INDEX}: its build did not finish); "
                                    "run scripts/flame_cache.py again to finish it")
        return cls(root, manifest, read_json_object(root / INDEX))

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_arrays": {}}  # data-loader workers map the shards themselves

    @property
    def kinds(self) -> list[str]:
        return list(self.index)

    def langs(self, kind: str) -> list[str]:
        return sorted(self._table(kind)["rows"])

    def row_ids(self, kind: str, lang: str) -> list[str]:
        return list(self._table(kind)["rows"].get(lang, {}))

    def facet_names(self, kind: str) -> list[str]:
        return list(self._table(kind)["facets"])

    def _table(self, kind: str) -> dict[str, Any]:
        if kind not in self.index:
            raise KeyError(f"{self.root}: no {kind!r} captions in this cache (it has {', '.join(self.index)})")
        return self.index[kind]

    def _array(self, rel: str) -> np.ndarray:
        if rel not in self._arrays:
            self._arrays[rel] = np.load(self.root / rel, mmap_mode="r")  # [N, K, D]
        return self._arrays[rel]

    def lookup(self, row_ids: Sequence[str | int], lang: str, kind: str) -> Tensor:
        """Facet vectors ``[B, K, D]`` (float32) of the given rows' ``lang`` ``kind`` captions."""
        table = self._table(kind)
        rows = table["rows"].get(lang, {})
        where = []
        for r in row_ids:
            if str(r) not in rows:
                raise KeyError(f"{self.root}: no {lang} {kind} caption of row {r!r} in the cache")
            where.append(rows[str(r)])
        out = np.empty((len(where), len(table["facets"]), table["dim"]), dtype=np.float32)
        loc = np.asarray(where, dtype=np.int64).reshape(-1, 2)
        for s in np.unique(loc[:, 0]):
            sel = np.nonzero(loc[:, 0] == s)[0]
            out[sel] = self._array(table["shards"][s])[loc[sel, 1]]
        return torch.from_numpy(out)

    @property
    def dim(self) -> int:
        """Width of one facet vector (the LLM's hidden size)."""
        return max((int(t["dim"]) for t in self.index.values()), default=0)
