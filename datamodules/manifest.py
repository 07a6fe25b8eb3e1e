"""JSONL and TSV manifests: one utterance per line, with errors that name file and line."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

REQUIRED = ("audio",)
"""Every manifest row needs an audio path; text/lang/speaker/duration are optional."""


class ManifestError(ValueError):
    """A manifest that can't be parsed; the message names the file and the line number."""


def _resolve(audio: str, base: Path) -> str:
    p = Path(audio).expanduser()
    return str(p if p.is_absolute() else base / p)


def _check(row: Any, path: Path, lineno: int) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise ManifestError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
    missing = [k for k in REQUIRED if not row.get(k)]
    if missing:
        raise ManifestError(f"{path}:{lineno}: missing field(s) {', '.join(missing)}")
    if "duration" in row:
        try:
            row["duration"] = float(row["duration"])
        except (TypeError, ValueError):
            raise ManifestError(f"{path}:{lineno}: duration {row['duration']!r} is not a number") from None
    for key in ("text", "lang", "speaker"):
        if key in row and not isinstance(row[key], str):
            raise ManifestError(f"{path}:{lineno}: field {key!r} must be a string")
    return row


def read_manifest(path: str | os.PathLike[str], resolve_paths: bool = True) -> list[dict[str, Any]]:
    """Read a ``.jsonl`` (one object a line) or ``.tsv`` (header row) manifest.

    Relative audio paths are resolved against the manifest's folder; the path as written is
    kept under ``audio_raw``. Blank lines and lines starting with ``#`` are skipped.
    """
    path = Path(path)
    if not path.exists():
        raise ManifestError(f"{path}: manifest not found")
    base = path.parent
    rows: list[dict[str, Any]] = []
    with open(path, encoding="utf-8", newline="") as f:
        if path.suffix.lower() in (".tsv", ".tab"):
            reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            header = next(reader, None)
            if not header or "audio" not in header:
                raise ManifestError(f"{path}:1: TSV header must name an 'audio' column, got {header}")
            for lineno, fields in enumerate(reader, start=2):
                if not fields or fields[0].startswith("#"):
                    continue
                if len(fields) != len(header):
                    raise ManifestError(
                        f"{path}:{lineno}: expected {len(header)} tab-separated fields, got {len(fields)}"
                    )
                rows.append(_check(dict(zip(header, fields)), path, lineno))
        else:
            for lineno, line in enumerate(f, start=1):
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ManifestError(f"{path}:{lineno}: invalid JSON ({e.msg})") from None
                rows.append(_check(obj, path, lineno))
    for row in rows:
        row["audio_raw"] = row["audio"]
        if resolve_paths:
            row["audio"] = _resolve(row["audio"], base)
    return rows
