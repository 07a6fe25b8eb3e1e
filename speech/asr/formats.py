"""Output formats of transcription: JSONL rows, TSV, and SRT/WebVTT subtitles built from word timestamps."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.io import atomic_open, write_jsonl

FORMATS = ("jsonl", "tsv", "srt", "vtt")
"""Output formats, chosen by ``format=`` or the output file's suffix."""

SUBTITLES = ("srt", "vtt")


@dataclass
class SubtitleConfig:
    """How words are grouped into subtitle cues."""

    max_line_chars: int = 42
    """Longest line of a cue, in characters (a longer single word gets a line of its own)."""
    max_lines: int = 2
    """Lines per cue."""
    max_cue_seconds: float = 7.0
    """Longest time a cue stays on screen."""
    max_gap_seconds: float = 1.5
    """A pause at least this long between two words starts a new cue."""


@dataclass
class Cue:
    """One subtitle: its time span and lines of text."""

    start: float
    end: float
    lines: list[str] = field(default_factory=list)


@dataclass
class OutputPlan:
    """Where results go: the resumable JSONL record and the file (or folder, for subtitles) in ``format``."""

    format: str
    output: Path
    record: Path

    @property
    def per_file(self) -> bool:
        """Subtitles into a folder, one file per input."""
        return self.format in SUBTITLES and self.output.suffix.lower() != f".{self.format}"


def plan_output(output: str | os.PathLike[str], fmt: str | None = None) -> OutputPlan:
    """Format from ``fmt`` or the suffix; the JSONL record is the output itself or sits next to it.

    Subtitles for many inputs go into a folder (``output=subs/ format=srt``), with the record inside.
    """
    out = Path(output)
    fmt = (fmt or out.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise ValueError(f"output={output}: can't tell the format from the suffix; give format= "
                         f"one of {', '.join(FORMATS)}")
    if fmt == "jsonl":
        return OutputPlan(fmt, out, out)
    plan = OutputPlan(fmt, out, out.with_name(out.name + ".jsonl"))
    if plan.per_file:
        plan.record = out / "transcripts.jsonl"
    return plan


def build_cues(words: Sequence[dict[str, Any]], cfg: SubtitleConfig | None = None) -> list[Cue]:
    """Pack timed words into cues of at most ``max_lines`` lines of ``max_line_chars``, split at pauses."""
    cfg = cfg or SubtitleConfig()
    cues: list[Cue] = []
    prev_end = None
    for w in words:
        text, start, end = str(w["word"]), float(w["start"]), float(w["end"])
        cue = cues[-1] if cues else None
        new_cue = (cue is None or end - cue.start > cfg.max_cue_seconds
                   or (prev_end is not None and start - prev_end >= cfg.max_gap_seconds))
        if cue is not None and not new_cue:
            if len(cue.lines[-1]) + 1 + len(text) <= cfg.max_line_chars:
                cue.lines[-1] += " " + text
            elif len(cue.lines) < cfg.max_lines:
                cue.lines.append(text)
            else:
                new_cue = True
            if not new_cue:
                cue.end = max(cue.end, end)
        if new_cue:
            cues.append(Cue(start, max(end, start + 0.01), [text]))
        prev_end = end
    return cues


def _clock(seconds: float, sep: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def render_srt(cues: Sequence[Cue]) -> str:
    """SubRip: numbered cues, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, a blank line after each."""
    return "".join(f"{i}\n{_clock(c.start, ',')} --> {_clock(c.end, ',')}\n" + "\n".join(c.lines) + "\n\n"
                   for i, c in enumerate(cues, 1))


def render_vtt(cues: Sequence[Cue]) -> str:
    """WebVTT: a ``WEBVTT`` header, then cues with ``HH:MM:SS.mmm --> HH:MM:SS.mmm``."""
    return "WEBVTT\n\n" + "".join(f"{_clock(c.start, '.')} --> {_clock(c.end, '.')}\n" + "\n".join(c.lines) + "\n\n"
                                  for c in cues)


def _cell(value: Any) -> str:
    return "" if value is None else " ".join(str(value).split())  # no tabs or newlines inside a cell


def render_tsv(rows: Sequence[dict[str, Any]]) -> str:
    """One line per input: audio, lang, duration, text (and the reference when the manifest had one)."""
    cols = ["audio", "lang", "duration", "text"] + (["ref"] if any("ref" in r for r in rows) else [])
    return "\t".join(cols) + "\n" + "".join("\t".join(_cell(r.get(c)) for c in cols) + "\n" for r in rows)


def subtitle_names(audios: Sequence[str], suffix: str) -> list[str]:
    """Relative file names for per-input subtitles: the audio path below the inputs' common folder.

    Names never leave the output folder; ``a.wav`` and ``a.flac`` become ``a.wav.srt`` and ``a.flac.srt``.
    """
    try:
        base = os.path.commonpath([str(Path(a).parent) for a in audios]) if audios else ""
    except ValueError:  # absolute and relative paths mixed
        base = ""
    rels = []
    for a in audios:
        rel = Path(os.path.relpath(a, base)) if base else Path(Path(a).name)
        rels.append(Path(Path(a).name) if rel.is_absolute() or ".." in rel.parts else rel)
    stems = Counter(str(r.with_suffix("")) for r in rels)
    return [str(r.with_suffix(suffix)) if stems[str(r.with_suffix(""))] == 1 else f"{r}{suffix}" for r in rels]


def write_output(plan: OutputPlan, rows: Sequence[dict[str, Any]], subtitles: SubtitleConfig | None = None) -> None:
    """Write ``rows`` (the finished record) in the plan's format, every file atomically."""
    if plan.format == "jsonl":
        write_jsonl(plan.output, rows)
        return
    if plan.format == "tsv":
        with atomic_open(plan.output, "w", encoding="utf-8") as f:
            f.write(render_tsv(rows))
        return
    render = render_srt if plan.format == "srt" else render_vtt
    if not plan.per_file:
        if len(rows) > 1:
            raise ValueError(f"output={plan.output}: one {plan.format} file can't hold {len(rows)} inputs; "
                             f"give a folder (output=<dir> format={plan.format})")
        targets = [(plan.output, rows[0])] if rows else []
    else:
        names = subtitle_names([r["audio"] for r in rows], f".{plan.format}")
        targets = [(plan.output / n, r) for n, r in zip(names, rows)]
    for path, row in targets:
        if "words" not in row:
            raise ValueError(f"{row['audio']}: no word timestamps in the record, needed for {plan.format}")
        with atomic_open(path, "w", encoding="utf-8") as f:
            f.write(render(build_cues(row["words"], subtitles)))
