"""Durations for text-to-speech from the suite's own CTC ASR: one forced alignment per utterance.

    python scripts/tts_align.py asr=runs/train/asr_lowres_default/model manifest=data/speech/train.jsonl \
        output=data/tts_align/train.jsonl
    python scripts/tts_align.py asr=<dir> corpus=data/speech output_dir=data/tts_align   (splits=[train,dev,test])

Every row gets ``units`` (``speech.tts.units.char_units``: silence, the normalised transcript's characters,
silence), ``durations`` (mel frames of ``speech.vocoder.mel.MelSpec`` per unit, summing to the utterance's mel
frame count) and ``align_score`` (mean per-frame log-probability of the forced CTC path; low means the ASR hardly
hears the text). How the spikes and blanks of CTC become durations: ``speech/tts/align.py``. The ``audio`` path
is rewritten relative to the output's folder, so the output is a manifest of its own.
Runs on common.batch_job: a re-run skips finished rows; rows that can't be aligned (characters outside the ASR
alphabet, unreadable or too short audio) go to <output>.failed.jsonl with the reason, and the exit code is 3.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from omegaconf import DictConfig

from common import runner
from common.batch_job import BatchJob, BatchReport, Failure, Item, JsonlOutput, chunks
from datamodules.manifest import read_manifest
from speech.asr.align import min_frames, token_spans
from speech.asr.infer import Transcriber
from speech.audio import SAMPLE_RATE, AudioError, load_audio
from speech.tts.align import FRAME_OFFSET, MEL, align_durations, frame_energy, path_score
from speech.tts.units import char_units
from speech.vocoder.mel import LogMelSpectrogram, MelSpec

log = logging.getLogger("tts_align")
Row = dict[str, Any]


@dataclass
class Aligner:
    """The suite's CTC ASR as a forced aligner of ``char_units`` to mel frames."""

    transcriber: Transcriber
    spec: MelSpec = MEL
    silence_below: float = 5.0
    """Nats below the loudest frame's level below which a frame counts as silence (speech.tts.align.assign_silence)."""
    frame_offset: float = FRAME_OFFSET
    """ASR frames by which a CTC boundary precedes its sample position (speech.tts.align.FRAME_OFFSET)."""

    def __post_init__(self) -> None:
        self.mel = LogMelSpectrogram(self.spec)

    def units(self, row: Row) -> tuple[list[str], list[int]]:
        """The row's units and the ASR ids of its characters; ``ValueError`` saying why it can't be aligned."""
        text = row.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ValueError("no text to align")
        lang = row.get("lang") if isinstance(row.get("lang"), str) else None
        units = char_units(text, lang)
        index = self.transcriber.vocab.index
        unknown = [c for c in dict.fromkeys(units[1:-1]) if c not in index]
        if unknown:
            raise ValueError(f"character(s) outside the ASR alphabet: {', '.join(map(repr, unknown))}")
        return units, [index[c] for c in units[1:-1]]

    @staticmethod
    def check_length(ids: list[int], frames: int, wave: np.ndarray) -> None:
        """``ValueError`` when ``frames`` ASR frames can't hold a CTC path through the characters."""
        if min_frames(ids) > frames:
            raise ValueError(f"too short: {len(ids)} characters need {min_frames(ids)} ASR frames, the audio "
                             f"({len(wave) / SAMPLE_RATE:.2f} s) gives {frames}")

    def finish(self, units: list[str], ids: list[int], logp: torch.Tensor, wave: np.ndarray) -> Row:
        """Durations and score of one utterance from its log-probs [T, V]."""
        self.check_length(ids, logp.shape[0], wave)
        spans = token_spans(logp, ids, self.transcriber.vocab.blank_id)
        with torch.no_grad():
            energy = frame_energy(self.mel(torch.from_numpy(wave)[None])[0])
        durs = align_durations(units, spans, logp.shape[0], self.transcriber.frame_samples, len(wave), energy,
                               self.silence_below, self.spec, self.frame_offset)
        score = path_score(logp, spans, ids, self.transcriber.vocab.blank_id)
        return {"units": units, "durations": durs, "align_score": round(score, 4)}

    def process(self, batch: Sequence[Item]) -> list[Row | Failure]:
        """Rows (the input row plus units, durations, align_score) or Failures, one per item."""
        results: list[Row | Failure | None] = [None] * len(batch)
        ready: list[tuple[int, list[str], list[int], np.ndarray]] = []
        for i, it in enumerate(batch):
            try:
                units, ids = self.units(it.payload)
                wave = load_audio(str(it.path))
                self.check_length(ids, len(wave) // self.transcriber.frame_samples + 1, wave)  # before the ASR
                ready.append((i, units, ids, wave))
            except (ValueError, AudioError) as e:
                results[i] = Failure(str(e))
        if ready:
            logp, lens = self.transcriber.log_probs([w for *_, w in ready])
            for (i, units, ids, wave), lp, n in zip(ready, logp, lens.tolist()):
                try:
                    results[i] = {**batch[i].payload, **self.finish(units, ids, lp[: int(n)].cpu(), wave)}
                except ValueError as e:
                    results[i] = Failure(str(e))
        return [r if r is not None else Failure("not processed") for r in results]


def manifest_items(manifest: str | os.PathLike[str], output: Path, limit: int | None = None) -> list[Item]:
    """One item per manifest row; the id and the row's ``audio`` are the audio path relative to ``output``'s
    folder (absolute paths stay absolute), so the output rows point at the same files."""
    rows = read_manifest(manifest, resolve_paths=False)[:limit]
    base = Path(manifest).parent
    items = []
    for row in rows:
        raw = Path(str(row.pop("audio_raw"))).expanduser()
        path = raw if raw.is_absolute() else base / raw
        audio = str(raw) if raw.is_absolute() else os.path.relpath(path, output.parent)
        items.append(Item(audio, str(path), {**row, "audio": audio}))
    return items


def by_duration(size: int) -> Any:
    """Batches of rows of similar length, so little compute goes to padding."""
    def batches(todo: list[Item]) -> Iterator[list[Item]]:
        return chunks(sorted(todo, key=lambda it: float(it.payload.get("duration") or 0.0)), size)
    return batches


def align_manifest(aligner: Aligner, manifest: str | os.PathLike[str], output: str | os.PathLike[str],
                   batch_size: int = 8, limit: int | None = None, progress: bool = True) -> BatchReport:
    """Align every row of ``manifest`` into ``output`` (resumable; failures in ``<output>.failed.jsonl``)."""
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    job = BatchJob(JsonlOutput(out), aligner.process, batch_size, by_duration(batch_size), id_key="audio",
                   progress=progress, desc=f"aligning {Path(manifest).name}", unit="utt")
    report = job.run(manifest_items(manifest, out, limit))
    log.info("%s: %s", out, report.summary())
    return report


def jobs(cfg: DictConfig) -> list[tuple[Path, Path]]:
    """(manifest, output) pairs: one from manifest= and output=, or every split of corpus= into output_dir=."""
    if cfg.get("corpus"):
        if not cfg.get("output_dir"):
            raise SystemExit("tts_align: corpus= needs output_dir=")
        pairs = [(Path(cfg.corpus) / f"{s}.jsonl", Path(cfg.output_dir) / f"{s}.jsonl") for s in cfg.splits]
        missing = [str(m) for m, _ in pairs if not m.is_file()]
        if missing:
            raise SystemExit(f"tts_align: manifest(s) not found: {', '.join(missing)}")
        return pairs
    if not cfg.get("manifest") or not cfg.get("output"):
        raise SystemExit("tts_align: manifest= and output= (or corpus= and output_dir=) required "
                         "(python scripts/tts_align.py --help lists the keys)")
    return [(Path(cfg.manifest), Path(cfg.output))]


def run(cfg: DictConfig) -> int:
    """Align the configured manifests; the exit code (0, or 3 when some rows failed)."""
    runner.setup_threads(cfg.get("threads"))
    pairs = jobs(cfg)
    transcriber = Transcriber.from_pretrained(cfg.asr, cfg.device, decoder="greedy", lid=False)
    aligner = Aligner(transcriber, MEL, cfg.silence_below, cfg.frame_offset)
    code = 0
    for manifest, output in pairs:
        report = align_manifest(aligner, manifest, output, cfg.batch_size, cfg.get("limit"), cfg.progress)
        if report.failed:
            reasons = "\n".join(f"  {f['audio']}: {f['reason']}" for f in report.failed[:20])
            log.warning("%d row(s) of %s not aligned (all in %s.failed.jsonl):\n%s", len(report.failed), manifest,
                        output, reasons)
        code = max(code, report.exit_code)
    return code


@hydra.main(version_base="1.3", config_path="../configs/inference", config_name="tts_align")
def main(cfg: DictConfig) -> None:
    code = run(runner.require(cfg, "tts_align"))
    if code:
        sys.exit(code)


if __name__ == "__main__":
    main()
