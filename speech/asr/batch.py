"""Resumable batch transcription of folders, manifests or single files."""

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
from speech.asr.infer import Transcriber
from speech.audio import SAMPLE_RATE, AudioError, decode_audio

log = logging.getLogger(__name__)

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


def _durations(items: list[Item]) -> list[float]:
    import soundfile as sf

    out = []
    for it in items:
        try:
            out.append(float(sf.info(it.path).duration))
        except Exception:
            out.append(0.0)  # decoded (or rejected) later; sorts first
    return out


@dataclass
class BatchReport:
    done: int = 0
    skipped_existing: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)


def transcribe_to_file(
    transcriber: Transcriber,
    inputs: list[Item],
    output: str | os.PathLike[str],
    max_batch_seconds: float = 300.0,
    num_workers: int = 1,
    progress: bool = True,
    lang_alphabet: bool = True,
) -> BatchReport:
    """Transcribe every input into ``output`` (JSONL), resuming a previous partial run.

    Finished rows go to ``<output>.partial`` as they are produced; the final file is written
    atomically. Failures are listed in ``<output>.failed.jsonl`` with their reasons.
    """
    out = Path(output)
    partial = out.with_name(out.name + ".partial")
    failed_log = out.with_name(out.name + ".failed.jsonl")
    done_rows = {r["audio"]: r for r in read_jsonl_lenient(out) + read_jsonl_lenient(partial)}
    report = BatchReport(skipped_existing=sum(1 for it in inputs if it.audio in done_rows))
    todo = [it for it in inputs if it.audio not in done_rows]
    failed_log.unlink(missing_ok=True)

    if todo:
        durations = _durations(todo)
        sampler = DurationBatchSampler(durations, max_batch_seconds, num_buckets=1, shuffle=False)
        loader = DataLoader(_Decoded(todo), batch_sampler=sampler, collate_fn=list, num_workers=num_workers)
        bar = tqdm(total=len(todo), desc="transcribing", unit="file", disable=not progress)
        for batch in loader:
            good = [(i, w) for i, w, err in batch if w is not None]
            for i, _, err in batch:
                if err is not None:
                    fail = {"audio": todo[i].audio, "reason": err}
                    report.failed.append(fail)
                    append_jsonl(failed_log, fail)
                    log.warning("skipping %s: %s", todo[i].audio, err)
            if good:
                langs = [todo[i].lang if lang_alphabet else None for i, _ in good]
                texts = transcriber.transcribe_waves([w for _, w in good], langs)
                for (i, w), text in zip(good, texts):
                    it = todo[i]
                    row: dict[str, Any] = {"audio": it.audio, "text": text, "lang": it.lang,
                                           "duration": round(len(w) / SAMPLE_RATE, 3)}
                    if "text" in it.extra:
                        row["ref"] = it.extra["text"]
                    append_jsonl(partial, row)
                    done_rows[it.audio] = row
                    report.done += 1
            bar.update(len(batch))
        bar.close()

    order = [it.audio for it in inputs if it.audio in done_rows]
    write_jsonl(out, (done_rows[a] for a in order))
    partial.unlink(missing_ok=True)
    return report

