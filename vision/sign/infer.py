"""Batch sign translation on ``common.batch_job``: pose files from a folder, a JSONL manifest (``id`` + ``pose``
or ``path``) or a single file; one JSONL row per clip ``{"id", "path", "translations": {lang: sentence}}``.

Unreadable or empty pose files are reported (``<output>.failed.jsonl``, with the file and the reason) and skipped;
the job resumes from ``<output>.partial`` and skips clips already translated into every requested language.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common.batch_job import BatchJob, BatchReport, Failure, Item, JsonlOutput, collect_items, manifest_items
from vision.sign.pose_io import SUFFIXES
from vision.sign.translator import SignTranslator


def read_inputs(path: str | os.PathLike[str]) -> list[Item]:
    """Items of a folder (``.npy``/``.pose`` files), a manifest (``pose`` or ``path``, relative to it) or a file."""
    p = Path(path)
    if p.is_file() and p.suffix.lower() == ".jsonl":
        items = []
        for it in manifest_items(p, require=()):
            row = it.payload if isinstance(it.payload, dict) else {}
            file = row.get("pose") or row.get("path")
            if it.error is None and not isinstance(file, str):
                it = Item(it.id, str(p), error=f"{p}: row {it.id!r} has no 'pose' (or 'path') field")
            elif it.error is None and isinstance(file, str):
                it = Item(it.id, str(p.parent / file), row)
            items.append(it)
        return items
    return collect_items(p, SUFFIXES)


def translator_process(translator: SignTranslator, tgt_langs: Sequence[str], beam: int) -> Any:
    """``process`` for the batch job: each readable clip translated; each bad one a ``Failure`` with its reason."""

    def process(batch: list[Item]) -> list[dict[str, Any] | Failure]:
        out: list[dict[str, Any] | Failure] = []
        feats, idx = [], []
        for it in batch:
            try:
                feats.append(translator.features(it.path or ""))
                idx.append(len(out))
                out.append(Failure(""))  # filled below
            except (ValueError, OSError) as e:
                out.append(Failure(str(e)))
        if feats:
            rows = translator.translate_embeddings(translator.embed_features(feats), tgt_langs, beam)
            for i, row in zip(idx, rows):
                out[i] = {"path": batch[i].path, "translations": row}
        return out

    return process


def translate_files(translator: SignTranslator, items: list[Item], output: str | os.PathLike[str],
                    tgt_langs: Sequence[str], beam: int = 4, batch_size: int = 16, progress: bool = True,
                    ) -> BatchReport:
    """Translate every unfinished item into ``output`` (JSONL, written atomically at the end)."""
    unknown = [lang for lang in tgt_langs if lang not in translator.langs]
    if unknown:
        raise ValueError(f"tgt_langs {unknown}: the model writes {', '.join(translator.langs)}")
    wanted = set(tgt_langs)
    job = BatchJob(JsonlOutput(Path(output)), translator_process(translator, tgt_langs, beam), batch_size=batch_size,
                   reuse=lambda r: wanted <= set(r.get("translations") or {}), progress=progress,
                   desc="translating", unit="clip")
    return job.run(items)
