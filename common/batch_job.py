"""One batch-job engine for every family's batch inference: inputs, resume, failures, atomic output, progress.

A job runs ``process(batch) -> [row | Failure]`` over ``Item``s. Each finished row is appended at once to
``<output>.partial`` (a crash loses nothing finished); a re-run reuses the rows of the partial file and of a
previous final output and processes only the rest; every bad item gets one line (id, path, reason) in
``<output>.failed.jsonl``; at the end the output is written atomically, in input order, and the partial file is
removed. Scripts exit with ``report.exit_code`` (3 when some items failed).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from common.io import append_jsonl, atomic_open, read_jsonl_lenient, write_jsonl

log = logging.getLogger(__name__)

EXIT_FAILED = 3
"""Exit code of a job that finished but skipped some items (listed in its failed.jsonl)."""

Row = dict[str, Any]


@dataclass(frozen=True)
class Item:
    """One unit of work: a unique id, where its data lives and/or the data itself."""

    id: str
    path: str | None = None
    payload: Any = None
    error: str | None = None
    """Set by an input reader when the item is bad before any processing (a broken manifest line)."""


@dataclass(frozen=True)
class Failure:
    """What ``process`` returns for an item it could not handle; the job goes on."""

    reason: str


@dataclass
class BatchReport:
    """What a run did: rows produced now, rows reused from an earlier run, failed items, wall time."""

    done: int = 0
    skipped_existing: int = 0
    failed: list[Row] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        return EXIT_FAILED if self.failed else 0

    def summary(self) -> str:
        return (f"{self.done} done, {self.skipped_existing} already finished, {len(self.failed)} failed "
                f"in {self.seconds:.1f} s")


class Output(Protocol):
    """The final output of a job: rows of an earlier complete run, and an atomic writer of all rows."""

    @property
    def path(self) -> Path:
        """The file rows are recorded in; the partial file is ``<path>.partial``."""

    def previous(self) -> list[Row]: ...

    def write(self, rows: list[Row]) -> None: ...


@dataclass
class JsonlOutput:
    """Rows as JSON lines."""

    path: Path

    def previous(self) -> list[Row]:
        return read_jsonl_lenient(self.path)

    def write(self, rows: list[Row]) -> None:
        write_jsonl(self.path, rows)


def ids_path(path: Path) -> Path:
    """The ids file beside an array output: ``emb.npy`` -> ``emb.ids.txt``."""
    return path.with_suffix(".ids.txt")


@dataclass
class NpyOutput:
    """One array row per item in ``<path>`` (.npy, input order) and the items' ids, one a line, in ``<stem>.ids.txt``.

    Rows carry the vector under ``key`` (a list in the partial file, which is JSON lines).
    """

    path: Path
    key: str = "embedding"
    dtype: str = "float32"

    def previous(self) -> list[Row]:
        ids_file = ids_path(self.path)
        if not (self.path.is_file() and ids_file.is_file()):
            return []
        ids = ids_file.read_text(encoding="utf-8").splitlines()
        arr = np.load(self.path, allow_pickle=False)
        if len(arr) != len(ids):
            # A crash between the two renames: redo those rows rather than pair vectors with the wrong ids.
            log.warning("%s has %d rows but %s has %d ids; not reusing them", self.path, len(arr), ids_file, len(ids))
            return []
        return [{"id": i, self.key: row} for i, row in zip(ids, arr)]

    def write(self, rows: list[Row]) -> None:
        arr = (np.stack([np.asarray(r[self.key], dtype=self.dtype) for r in rows]) if rows
               else np.empty((0, 0), dtype=self.dtype))  # [N, D]
        with atomic_open(self.path, "wb") as f:
            np.save(f, arr)
        with atomic_open(ids_path(self.path), "w", encoding="utf-8") as f:
            f.write("".join(f"{r['id']}\n" for r in rows))


def chunks(items: Sequence[Item], size: int) -> Iterator[list[Item]]:
    """Consecutive batches of at most ``size`` items."""
    for i in range(0, len(items), max(size, 1)):
        yield list(items[i : i + max(size, 1)])


def _mend(partial: Path) -> None:
    """End a torn last line left by a crash, so the next appended row starts on a line of its own."""
    if partial.is_file() and partial.stat().st_size:
        with open(partial, "rb") as f:
            f.seek(-1, os.SEEK_END)
            torn = f.read(1) != b"\n"
        if torn:
            with open(partial, "ab") as f:
                f.write(b"\n")


@dataclass
class BatchJob:
    """Run ``process`` over items in batches, resumably; see the module docstring."""

    output: Output
    process: Callable[[list[Item]], Sequence[Row | Failure]]
    """One result per item of the batch, in order; raise only for errors that should stop the whole job."""
    batch_size: int = 1
    batches: Callable[[list[Item]], Iterable[list[Item]]] | None = None
    """Groups the unfinished items into batches (e.g. by duration); default: ``chunks`` of ``batch_size``."""
    id_key: str = "id"
    """The row field that holds the item id (and names it in failed.jsonl)."""
    reuse: Callable[[Row], bool] | None = None
    """Whether a finished row still serves (e.g. it has the fields asked for now); default: every row."""
    failed_path: Path | None = None
    """Default ``<output>.failed.jsonl``; rewritten by every run, since failed items are retried."""
    progress: bool = True
    desc: str = "processing"
    unit: str = "item"

    @property
    def partial(self) -> Path:
        return self.output.path.with_name(self.output.path.name + ".partial")

    def run(self, items: Iterable[Item]) -> BatchReport:
        """Process every unfinished item and write the output; the report says what happened."""
        start = time.monotonic()
        items = list(items)
        report = BatchReport()
        failed_path = self.failed_path or self.output.path.with_name(self.output.path.name + ".failed.jsonl")
        failed_path.unlink(missing_ok=True)
        _mend(self.partial)
        done = {r[self.id_key]: r for r in self.output.previous() + read_jsonl_lenient(self.partial)
                if self.id_key in r and (self.reuse is None or self.reuse(r))}

        def fail(it: Item, reason: str) -> None:
            report.failed.append({self.id_key: it.id, "path": it.path, "reason": reason})
            append_jsonl(failed_path, report.failed[-1])
            log.warning("skipping %s: %s", it.id, reason)

        order: dict[str, int] = {}  # id -> position among the distinct, well-formed items
        todo: list[Item] = []
        for it in items:
            if it.error is not None:
                fail(it, it.error)
            elif it.id in order:
                fail(it, f"duplicate id {it.id!r} (item {order[it.id] + 1} has it too)")
            else:
                order[it.id] = len(order)
                if it.id in done:
                    report.skipped_existing += 1
                else:
                    todo.append(it)

        bar = tqdm(total=len(todo), desc=self.desc, unit=self.unit, disable=not self.progress)
        for batch in (self.batches or (lambda todo: chunks(todo, self.batch_size)))(todo):
            results = self.process(batch)
            if len(results) != len(batch):
                raise RuntimeError(f"process returned {len(results)} results for a batch of {len(batch)}")
            for it, result in zip(batch, results):
                if isinstance(result, Failure):
                    fail(it, result.reason)
                    continue
                row = {self.id_key: it.id, **result}
                append_jsonl(self.partial, row)  # before anything else, so a crash right after keeps it
                done[it.id] = row
                report.done += 1
            bar.update(len(batch))
        bar.close()

        self.output.write([done[i] for i in order if i in done])
        self.partial.unlink(missing_ok=True)
        report.seconds = time.monotonic() - start
        log.info("%s -> %s", report.summary(), self.output.path)
        return report


# Input readers. Bad entries become items with ``error`` set, so the job reports them and goes on.


def find_files(folder: str | os.PathLike[str], suffixes: Iterable[str]) -> list[Path]:
    """Files under ``folder`` (recursively) whose suffix is one of ``suffixes`` (lower case, with the dot)."""
    wanted = {s.lower() for s in suffixes}
    return sorted(f for f in Path(folder).rglob("*") if f.is_file() and f.suffix.lower() in wanted)


def folder_items(folder: str | os.PathLike[str], suffixes: Iterable[str]) -> list[Item]:
    """One item per matching file; the id is the path as found."""
    return [Item(str(f), str(f)) for f in find_files(folder, suffixes)]


def _manifest_row(line: str, require: Sequence[str]) -> tuple[Row | None, str | None]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        return None, f"invalid JSON ({e.msg})"
    if not isinstance(row, dict):
        return None, f"expected a JSON object, got {type(row).__name__}"
    if isinstance(row.get("id"), bool) or not isinstance(row.get("id"), (str, int)) or str(row["id"]) == "":
        return None, "missing field 'id' (a string or an integer)"
    if "\n" in str(row["id"]):
        return None, "the id holds a line break"
    missing = [k for k in require if not isinstance(row.get(k), str) or not row[k]]
    if missing:
        return None, f"missing field(s) {', '.join(repr(k) for k in missing)} (non-empty strings)"
    return row, None


def manifest_items(path: str | os.PathLike[str], require: Sequence[str] = ("path",)) -> list[Item]:
    """A JSONL manifest: one object a line with an ``id`` and the ``require``d fields (blank and ``#`` lines skipped).

    A ``path`` is resolved against the manifest's folder; the whole row is the payload. A broken line becomes a
    failed item with id ``<manifest>:<line>``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: manifest not found")
    items: list[Item] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            where = f"{path}:{lineno}"
            row, problem = _manifest_row(line, require)
            if row is None:
                items.append(Item(where, str(path), error=f"{where}: {problem}"))
                continue
            file = row.get("path")
            resolved = str(path.parent / Path(file).expanduser()) if isinstance(file, str) and file else None
            items.append(Item(str(row["id"]), resolved, row))
    return items


def line_items(path: str | os.PathLike[str], paths: bool = False) -> list[Item]:
    """A text file, one entry a line: texts (id = line number, payload = the text) or, with ``paths``, file paths
    (id = the line, path resolved against the file's folder). An empty line is a failed item.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: input not found")
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it does not start an empty one
    items: list[Item] = []
    for lineno, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            items.append(Item(str(lineno), str(path), error=f"{path}:{lineno}: empty line"))
        elif paths:
            items.append(Item(line, str(path.parent / Path(line).expanduser())))
        else:
            items.append(Item(str(lineno), str(path), line))
    return items


def collect_items(input_path: str | os.PathLike[str], suffixes: Iterable[str]) -> list[Item]:
    """File inputs from a folder (by suffix), a JSONL manifest (id + path), a .txt/.lst list of paths or one file."""
    p = Path(input_path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: input not found")
    if p.is_dir():
        return folder_items(p, suffixes)
    if p.suffix.lower() == ".jsonl":
        return manifest_items(p)
    if p.suffix.lower() in (".txt", ".lst"):
        return line_items(p, paths=True)
    return [Item(str(p), str(p))]
