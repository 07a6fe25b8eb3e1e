"""Batch source tracing on ``common.batch_job``: a folder, a manifest or a file in, one JSON line per clip out.

Unreadable, empty, silent and too-short files become failures with the file and the reason (``<output>.failed.jsonl``)
and the rest finish; a re-run skips the clips already traced.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from common.batch_job import BatchJob, BatchReport, Failure, Item, JsonlOutput, Row, collect_items
from speech.audio import AudioError
from speech.source_trace.tracer import SourceTracer

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".webm")


def trace_items(input_path: str | os.PathLike[str]) -> list[Item]:
    """Items of a folder (audio by suffix), a JSONL manifest (id + path), a .txt/.lst list of paths or one file."""
    return collect_items(input_path, AUDIO_SUFFIXES)


def trace_files(tracer: SourceTracer, items: Sequence[Item], output: str | os.PathLike[str], batch_size: int = 8,
                progress: bool = True) -> BatchReport:
    """Trace every item into the JSONL ``output`` (rows: id, path, source, family, unknown, probabilities, ...)."""

    def process(batch: list[Item]) -> list[Row | Failure]:
        results: list[Row | Failure] = []
        waves: list[np.ndarray] = []
        slots: list[int] = []
        for it in batch:
            try:
                if it.path is None:
                    raise ValueError(f"{it.id}: no audio path")
                waves.append(tracer.wave(it.path, name=it.path))
                slots.append(len(results))
                results.append({"path": it.path})
            except (AudioError, ValueError) as e:
                results.append(Failure(str(e)))
        for slot, trace in zip(slots, tracer.trace_batch(waves)):
            row = results[slot]
            assert isinstance(row, dict)
            row.update(trace.to_row())
        return results

    job = BatchJob(JsonlOutput(Path(output)), process, batch_size=batch_size,
                   progress=progress, desc="tracing", unit="clip")
    return job.run(items)
