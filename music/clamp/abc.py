"""Sheet music as ABC text: ABC files are read and checked; MusicXML and kern are parsed with music21 and written
as interleaved ABC (one line per bar, ``[V:n]`` before each part's bar), the form CLaMP 3 reads them in."""

from __future__ import annotations

import os
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

ABC_EXTS = (".abc",)
CONVERTED_EXTS = (".xml", ".musicxml", ".mxl", ".krn")
SHEET_EXTS = ABC_EXTS + CONVERTED_EXTS

_NOTE = re.compile(r"[A-Ga-gz]")
LABEL_FIELDS = ("R:", "%%MIDI program")
"""Header lines that name what a model should hear in the notes (the rhythm/dance type, the instrument): training
drops them at random and evaluation scores scores with and without them."""


def strip_fields(text: str, prefixes: tuple[str, ...] = LABEL_FIELDS) -> str:
    """``text`` without the lines that start with one of ``prefixes`` (header fields such as ``R:``)."""
    return "".join(line for line in text.splitlines(keepends=True) if not line.lstrip().startswith(prefixes))


def check_abc(text: str) -> str:
    """The tune's text if it is ABC notation a model can read; otherwise ``ValueError`` with the reason."""
    lines = [line.strip() for line in text.splitlines()]
    if not any(re.match(r"^K:", line) for line in lines):
        raise ValueError("not ABC notation: no K: (key) header field")
    body = [line for line in lines if line and not re.match(r"^[A-Za-z]:|^%", line)]
    if not any(_NOTE.search(line) for line in body):
        raise ValueError("not ABC notation: the tune body has no notes")
    return text


def read_abc(path: str | os.PathLike[str]) -> str:
    """An ABC file's text, checked (see ``check_abc``)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"not UTF-8 text (byte {e.start}: {e.reason})") from None
    return check_abc(text)


def read_sheet(path: str | os.PathLike[str]) -> str:
    """ABC text of an ABC, MusicXML or kern file; ``ValueError`` names why a file can't be read."""
    suffix = Path(path).suffix.lower()
    if suffix in ABC_EXTS:
        return read_abc(path)
    if suffix not in CONVERTED_EXTS:
        raise ValueError(f"not a sheet-music file ({suffix or 'no extension'}; read: {', '.join(SHEET_EXTS)})")
    import music21  # slow to import: only for the formats that need it

    try:
        score = music21.converter.parse(str(path))
    except Exception as e:  # music21 raises many kinds for broken files
        raise ValueError(f"music21 could not parse it ({type(e).__name__}: {e})") from None
    return check_abc(stream_to_abc(score))


def abc_pitch(step: str, octave: int, accidental: str = "") -> str:
    """``C4`` -> ``C``, ``C5`` -> ``c``, ``C3`` -> ``C,``, ``C6`` -> ``c'``; ``accidental`` is ABC's (^ _ =)."""
    if octave >= 5:
        return accidental + step.lower() + "'" * (octave - 5)
    return accidental + step.upper() + "," * (4 - octave)


def abc_length(quarters: Any, unit: Fraction = Fraction(1, 8)) -> str:
    """A duration in quarter notes as an ABC length multiplier of ``unit`` (L:1/8 by default)."""
    n = Fraction(quarters).limit_denominator(64) / (unit * 4)
    if n == 1:
        return ""
    if n.denominator == 1:
        return str(n.numerator)
    return f"{n.numerator}/{n.denominator}" if n.numerator != 1 else f"/{n.denominator}"


_ACC = {-2: "__", -1: "_", 0: "=", 1: "^", 2: "^^"}


def _element(el: Any, key_alter: dict[str, int], bar_alter: dict[str, int]) -> str:
    """One note, chord or rest in ABC, with the accidentals the key and the bar so far don't already imply."""
    length = abc_length(el.duration.quarterLength)
    if el.isRest:
        return "z" + length
    pitches = list(el.pitches)
    names = []
    for p in pitches:
        alter = int(p.alter) if p.accidental is not None else 0
        where = f"{p.step}{p.octave}"
        implied = bar_alter.get(where, key_alter.get(p.step, 0))
        acc = _ACC.get(alter, "") if alter != implied else ""
        bar_alter[where] = alter
        names.append(abc_pitch(p.step, int(p.octave if p.octave is not None else 4), acc))
    tie = "-" if el.tie is not None and el.tie.type in ("start", "continue") else ""
    body = names[0] if len(names) == 1 else "[" + "".join(names) + "]"
    return body + length + tie


def stream_to_abc(score: Any, title: str | None = None) -> str:
    """A music21 score as interleaved ABC with L:1/8 (grace notes and ornaments are dropped)."""
    import music21

    parts = list(score.parts) or [score]
    first = parts[0]
    meter = next(iter(first.recurse().getElementsByClass(music21.meter.TimeSignature)), None)
    key_sig = next(iter(first.recurse().getElementsByClass(music21.key.KeySignature)), None)
    key_obj = key_sig.asKey() if key_sig is not None else None
    key_alter = {p.step: int(p.alter) for p in key_sig.alteredPitches} if key_sig is not None else {}
    key = f"{key_obj.tonic.name.replace('-', 'b')}{'m' if key_obj.mode == 'minor' else ''}" if key_obj else "C"
    name = title or (score.metadata.title if score.metadata is not None and score.metadata.title else "")
    head = ["X:1", f"T:{name}" if name else "T:", f"M:{meter.ratioString if meter else '4/4'}", "L:1/8"]
    if len(parts) > 1:
        head += [f"V:{n}" for n in range(1, len(parts) + 1)]
    head.append(f"K:{key}")
    bars_by_part = [list(p.getElementsByClass(music21.stream.Measure)) or [p] for p in parts]
    lines = []
    for i in range(max(len(b) for b in bars_by_part)):
        cells = []
        for v, bars in enumerate(bars_by_part, start=1):
            if i >= len(bars):
                continue
            bar_alter: dict[str, int] = {}
            notes = [_element(el, key_alter, bar_alter) for el in bars[i].recurse().notesAndRests
                     if el.duration.quarterLength > 0]
            cell = " ".join(notes) + "|"
            cells.append(f"[V:{v}]{cell}" if len(parts) > 1 else cell)
        lines.append("".join(cells))
    return "\n".join(head + lines) + "\n"
