"""Reading text files: parallel JSONL (one meaning in several languages a row) and plain one-sentence-a-line files."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

PIVOT = "eng_Latn"
"""The language every parallel corpus aligns on (a real row is an English message and its translations)."""


def read_parallel(path: str | Path) -> list[dict[str, str]]:
    """``texts`` of every row of a parallel JSONL file; bad lines raise an error naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"parallel file not found: {path}")
    rows: list[dict[str, str]] = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                texts = json.loads(line)["texts"]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise ValueError(f"{path}:{n}: not a parallel row with a 'texts' object ({e})") from e
            if not isinstance(texts, dict):
                raise ValueError(f"{path}:{n}: 'texts' must map language codes to sentences")
            rows.append({k: v for k, v in texts.items() if isinstance(v, str) and v.strip()})
    if not rows:
        raise ValueError(f"{path}: no parallel rows")
    return rows


def aligned_sets(rows: list[dict[str, str]], langs: Sequence[str], limit: int | None = None) -> dict[str, list[str]]:
    """Per language the sentences of the rows that have every language in ``langs``; index i is one meaning."""
    keep = [r for r in rows if all(lang in r for lang in langs)][:limit]
    return {lang: [r[lang] for r in keep] for lang in langs}


def user_sentences(path: str | Path) -> tuple[str, ...]:
    """A user's own text file, one sentence a line."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: text file not found")
    return tuple(dict.fromkeys(s.strip() for s in p.read_text(encoding="utf-8").splitlines() if s.strip()))
