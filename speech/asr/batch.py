"""Resumable batch transcription of folders, manifests or single files, of any length, in any output format."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from common.io import append_jsonl, read_jsonl_lenient, write_jsonl
from datamodules.bucketing import DurationBatchSampler
from datamodules.manifest import read_manifest
from speech.asr.align import check_timestamps
from speech.asr.formats import SUBTITLES, SubtitleConfig, plan_output, write_output
from speech.asr.infer import Transcriber
from speech.asr.longform import probe_duration
from speech.audio import SAMPLE_RATE, AudioError, decode_audio

log = logging.getLogger(__name__)

LID_FIELDS = ("lang_confidence", "lang_detected", "segments")
"""Language-ID fields a row carries over from the transcriber's result."""

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".aac", ".webm", ".aiff", ".aif", ".au", ".wma"}


@dataclass
class Item:
    """One input: the path as the user gave it, where it lives, and an optional language."""

    audio: str
    path: str
    lang: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def collect_inputs(input_path: str | os.PathLike[str], lang: str | None = None) -> list[Item]:
    """A folder (searched recursively for audio), a JSONL/TSV manifest, or one audio file."""
    p = Path(input_path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: input not found")
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES)
        return [Item(str(f), str(f), lang) for f in files]
    if p.suffix.lower() in (".jsonl", ".tsv"):
        return [Item(r["audio_raw"], r["audio"], lang or r.get("lang"),
                     {k: v for k, v in r.items() if k in ("text", "speaker", "id")})
                for r in read_manifest(p)]
    return [Item(str(p), str(p), lang)]


class _Decoded(Dataset):
    def __init__(self, items: list[Item]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[int, np.ndarray | None, str | None]:
        try:
            return i, decode_audio(self.items[i].path, SAMPLE_RATE, name=self.items[i].audio), None
        except AudioError as e:
            return i, None, e.reason


def _durations(items: list[Item]) -> list[float | None]:
    return [probe_duration(it.path) for it in items]


@dataclass
class BatchReport:
    done: int = 0
    skipped_existing: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)


def transcribe_to_file(
    transcriber: Any,
    inputs: list[Item],
    output: str | os.PathLike[str],
    max_batch_seconds: float = 300.0,
    num_workers: int = 1,
    progress: bool = True,
    lang_alphabet: bool = True,
    timestamps: str = "none",
    fmt: str | None = None,
    subtitles: SubtitleConfig | None = None,
    lid: bool | None = None,
) -> BatchReport:
    """Transcribe every input into ``output`` (JSONL, TSV, SRT or VTT), resuming a previous partial run.

    Rows go to ``<record>.partial`` as they are produced (the record is the JSONL output itself, or
    ``<output>.jsonl`` beside other formats); final files are written atomically. Inputs longer than
    the transcriber's window run window by window. Failures are listed in ``<output>.failed.jsonl``.
    ``lid`` (CTC models with a language-ID head): None detects the language of inputs without one, True
    of every input, False never; rows then carry ``lang``, ``lang_confidence`` and, on long ones, ``segments``.
    """
    plan = plan_output(output, fmt)
    if plan.format in SUBTITLES and timestamps == "none":
        timestamps = "word"  # cues need word times
    check_timestamps(timestamps)
    windowed = isinstance(transcriber, Transcriber)
    if lid is None and not lang_alphabet:
        lid = False  # decoding ignores languages, so detecting one would only steer it back
    if timestamps != "none" and not windowed:
        raise ValueError(f"timestamps={timestamps} needs a CTC model; {type(transcriber).__name__} has none")
    need = {"none": (), "word": ("words",), "char": ("words", "chars")}[timestamps]
    partial = plan.record.with_name(plan.record.name + ".partial")
    failed_log = Path(output).with_name(Path(output).name + ".failed.jsonl")
    done_rows = {r["audio"]: r for r in read_jsonl_lenient(plan.record) + read_jsonl_lenient(partial)
                 if all(k in r for k in need)}  # rows without the timestamps asked for now are redone
    report = BatchReport(skipped_existing=sum(1 for it in inputs if it.audio in done_rows))
    todo = [it for it in inputs if it.audio not in done_rows]
    failed_log.unlink(missing_ok=True)

    def fail(it: Item, reason: str) -> None:
        report.failed.append({"audio": it.audio, "reason": reason})
        append_jsonl(failed_log, report.failed[-1])
        log.warning("skipping %s: %s", it.audio, reason)

    def finish(it: Item, result: dict[str, Any]) -> None:
        row: dict[str, Any] = {"audio": it.audio, "text": result["text"], "lang": result.get("lang", it.lang),
                               "duration": result["duration"], **{k: result[k] for k in need},
                               **{k: result[k] for k in LID_FIELDS if k in result}}
        if "text" in it.extra:
            row["ref"] = it.extra["text"]
        append_jsonl(partial, row)
        done_rows[it.audio] = row
        report.done += 1

    if todo:
        durations = _durations(todo)
        limit = transcriber.window.chunk_seconds if windowed else float("inf")
        long_ids = [i for i, d in enumerate(durations) if windowed and (d is None or d > limit)]
        short_ids = sorted(set(range(len(todo))) - set(long_ids))
        bar = tqdm(total=len(todo), desc="transcribing", unit="file", disable=not progress)
        if short_ids:
            short = [todo[i] for i in short_ids]
            sampler = DurationBatchSampler([durations[i] or 0.0 for i in short_ids], max_batch_seconds,
                                           num_buckets=1, shuffle=False)
            loader = DataLoader(_Decoded(short), batch_sampler=sampler, collate_fn=list, num_workers=num_workers)
            for batch in loader:
                good = [(short[i], w) for i, w, err in batch if w is not None]
                for i, _, err in batch:
                    if err is not None:
                        fail(short[i], err)
                if good:
                    langs = [it.lang if lang_alphabet else None for it, _ in good]
                    if windowed:
                        results = transcriber.transcribe_batch([w for _, w in good], langs, timestamps, lid)
                    else:
                        texts = transcriber.transcribe_waves([w for _, w in good], langs)
                        results = [{"text": t, "duration": round(len(w) / SAMPLE_RATE, 3)}
                                   for t, (_, w) in zip(texts, good)]
                    for (it, _), result in zip(good, results):
                        finish(it, result)
                bar.update(len(batch))
        for i in long_ids:
            it = todo[i]
            try:
                finish(it, transcriber.transcribe_long(it.path, it.lang if lang_alphabet else None, timestamps,
                                                       name=it.audio, lid=lid))
            except AudioError as e:
                fail(it, e.reason)
            bar.update(1)
        bar.close()

    rows = [done_rows[it.audio] for it in inputs if it.audio in done_rows]
    write_jsonl(plan.record, rows)
    if plan.output != plan.record:
        write_output(plan, rows, subtitles)
    partial.unlink(missing_ok=True)
    return report
