"""Resumable batch transcription of folders, manifests or single files, of any length, in any output format."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import DataLoader, Dataset

from common.batch_job import BatchJob, BatchReport, Failure, find_files
from common.batch_job import Item as JobItem
from common.io import read_jsonl_lenient, write_jsonl
from datamodules.bucketing import DurationBatchSampler
from datamodules.manifest import read_manifest
from speech.asr.align import check_timestamps
from speech.asr.formats import SUBTITLES, OutputPlan, SubtitleConfig, plan_output, write_output
from speech.asr.infer import Transcriber
from speech.asr.longform import probe_duration
from speech.audio import SAMPLE_RATE, AudioError, decode_audio
from text.langcodes import LanguageError, resolve

__all__ = ["AUDIO_SUFFIXES", "BatchReport", "Item", "collect_inputs", "transcribe_to_file"]

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
        return [Item(str(f), str(f), lang) for f in find_files(p, AUDIO_SUFFIXES)]
    if p.suffix.lower() in (".jsonl", ".tsv"):
        return [Item(r["audio_raw"], r["audio"], lang or r.get("lang"),
                     {k: v for k, v in r.items() if k in ("text", "speaker", "id")})
                for r in read_manifest(p)]
    return [Item(str(p), str(p), lang)]


def resolve_langs(inputs: list[Item], known: Sequence[str] | None) -> tuple[list[Item], dict[str, str]]:
    """Inputs with their language as the model writes it (de -> deu_Latn), and, by audio, why a code did not
    resolve (unknown to the model, ambiguous); ``known`` empty or None: codes are only made canonical."""
    done: dict[str, str | LanguageError] = {}
    out, bad = [], {}
    for it in inputs:
        if it.lang is None:
            out.append(it)
            continue
        if it.lang not in done:
            try:
                done[it.lang] = resolve(it.lang, known)
            except LanguageError as e:
                done[it.lang] = e
        code = done[it.lang]
        if isinstance(code, LanguageError):
            bad[it.audio] = str(code)
        out.append(dataclasses.replace(it, lang=code) if isinstance(code, str) else it)
    return out, bad


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
class _Loaded:
    """An input as the batches hand it to the transcriber: decoded (short), to stream (long), or unreadable."""

    item: Item
    wave: np.ndarray | None = None
    error: str | None = None
    long: bool = False


@dataclass
class _TranscriptOutput:
    """The JSONL record (what resumes read) and, beside it, the output in the format asked for."""

    plan: OutputPlan
    subtitles: SubtitleConfig | None

    @property
    def path(self) -> Path:
        return self.plan.record

    def previous(self) -> list[dict[str, Any]]:
        return read_jsonl_lenient(self.plan.record)

    def write(self, rows: list[dict[str, Any]]) -> None:
        write_jsonl(self.plan.record, rows)
        if self.plan.output != self.plan.record:
            write_output(self.plan, rows, self.subtitles)


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

    Runs on ``common.batch_job``: rows go to ``<record>.partial`` as they are produced (the record is the JSONL
    output itself, or ``<output>.jsonl`` beside other formats); final files are written atomically. Inputs longer
    than the transcriber's window run window by window. Failures are listed in ``<output>.failed.jsonl``.
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
    # Transcribers without a language list (LLM-ASR writes new languages in context) get canonical codes.
    inputs, bad_lang = resolve_langs(inputs, getattr(transcriber, "languages", None))

    def batches(todo: list[JobItem]) -> Iterator[list[JobItem]]:
        """Short inputs decoded in loader workers and grouped by duration, then long ones one by one."""
        items: list[Item] = [t.payload for t in todo]
        if any(it.audio in bad_lang for it in items):
            yield [_job_item(_Loaded(it, error=bad_lang[it.audio])) for it in items if it.audio in bad_lang]
            items = [it for it in items if it.audio not in bad_lang]
        durations = _durations(items)
        limit = transcriber.window.chunk_seconds if windowed else float("inf")
        long_ids = [i for i, d in enumerate(durations) if windowed and (d is None or d > limit)]
        short_ids = sorted(set(range(len(items))) - set(long_ids))
        if short_ids:
            short = [items[i] for i in short_ids]
            sampler = DurationBatchSampler([durations[i] or 0.0 for i in short_ids], max_batch_seconds,
                                           num_buckets=1, shuffle=False)
            loader = DataLoader(_Decoded(short), batch_sampler=sampler, collate_fn=list, num_workers=num_workers)
            for batch in loader:
                yield [_job_item(_Loaded(short[i], w, err)) for i, w, err in batch]
        for i in long_ids:
            yield [_job_item(_Loaded(items[i], long=True))]

    def row(it: Item, result: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"audio": it.audio, "text": result["text"], "lang": result.get("lang", it.lang),
                               "duration": result["duration"], **{k: result[k] for k in need},
                               **{k: result[k] for k in LID_FIELDS if k in result}}
        if "text" in it.extra:
            out["ref"] = it.extra["text"]
        return out

    def process(batch: list[JobItem]) -> list[dict[str, Any] | Failure]:
        loaded: list[_Loaded] = [b.payload for b in batch]
        if loaded[0].long:  # a long input, alone in its batch: streamed window by window
            it = loaded[0].item
            try:
                return [row(it, transcriber.transcribe_long(it.path, it.lang if lang_alphabet else None, timestamps,
                                                            name=it.audio, lid=lid))]
            except AudioError as e:
                return [Failure(e.reason)]
        good = [x for x in loaded if x.wave is not None]
        results: dict[int, dict[str, Any]] = {}
        if good:
            langs = [x.item.lang if lang_alphabet else None for x in good]
            waves = [x.wave for x in good if x.wave is not None]
            if windowed:
                out = transcriber.transcribe_batch(waves, langs, timestamps, lid)
            else:
                out = [{"text": t, "duration": round(len(w) / SAMPLE_RATE, 3)}
                       for t, w in zip(transcriber.transcribe_waves(waves, langs), waves)]
            results = {id(x): r for x, r in zip(good, out)}
        return [Failure(x.error or "not decoded") if x.wave is None else row(x.item, results[id(x)]) for x in loaded]

    job = BatchJob(_TranscriptOutput(plan, subtitles), process, batches=batches, id_key="audio",
                   reuse=lambda r: all(k in r for k in need),  # rows without the timestamps asked for are redone
                   failed_path=Path(output).with_name(Path(output).name + ".failed.jsonl"),
                   progress=progress, desc="transcribing", unit="file")
    return job.run([_job_item(it) for it in inputs])


def _job_item(x: Item | _Loaded) -> JobItem:
    it = x.item if isinstance(x, _Loaded) else x
    return JobItem(it.audio, it.path, x)
