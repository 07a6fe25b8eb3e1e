"""Real ABC tunes (tune books such as Ryan's Mammoth Collection) read into the music corpus's attributes.

A file may hold many tunes: it splits on ``X:`` lines. Each tune's header gives what the suite can describe: the
genre (from ``R:``, else a title, else the file name; only the suite's dance types are kept, a slip jig or a
strathspey is reported as such), the key as tonic and mode (``K:``), the meter (``M:``) and, where a ``Q:`` gives it,
the tempo in the meter's beat. ``clean_tune`` writes the tune back as the corpus's ABC: the music header fields only,
no comments, lyrics or text annotations, the genre word taken out of the title (``R:`` names it, and evaluation
scores ABC with and without ``R:``). A tune that can't be used raises ``TuneError`` with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from datamodules.corpus.music_forms import METERS, tempo_word
from datamodules.corpus.music_lexicon import ENG

GENRE_WORDS: tuple[tuple[str, str | None], ...] = (
    (r"slip[\s-]*jig", None), (r"strathspey", None), (r"\bclog", None), (r"\bfling\b", None),
    (r"set[\s-]*dance", None), (r"schottische", None), (r"mazurka", None), (r"minuet", None),
    (r"\bjigg?s?\b", "jig"), (r"\breels?\b", "reel"), (r"hornpipe", "hornpipe"),
    (r"\bwaltz|walzer|\bvalse\b", "waltz"), (r"\bmarch\b|marsch\b|quick[\s-]*step", "march"), (r"polka", "polka"),
)
"""Regex -> the suite's genre (None: a dance type the suite doesn't have); the first that matches decides."""
SUITE_MODES = {"": "major", "maj": "major", "ion": "major", "m": "minor", "min": "minor", "aeo": "minor",
               "dor": "dorian", "mix": "mixolydian", "lyd": "lydian", "phr": "phrygian", "loc": "locrian"}
"""``K:`` mode word (its first three letters) -> mode."""
KEEP_HEADER = ("T:", "M:", "L:", "Q:", "K:")
"""Header fields kept in the cleaned tune (X: and R: are written anew)."""
BODY_FIELDS = re.compile(r"^(?:[KLMPQV]:|\[[KLMPQV]:)")
"""Body lines kept as they are: changes of key, length, meter, part, tempo and voice."""
_CHORD = re.compile(r"^\(?[A-G][#b]?(?:m|min|maj|dim|aug|sus|add|M)?[0-9]*(?:/[A-Ga-g][#b]?)?\)?$")
_NOTE = re.compile(r"[A-Ga-g]")


class TuneError(ValueError):
    """A tune the real-tune corpus can't use; the message is the reason."""


@dataclass
class RealTune:
    """One tune read from a tune book."""

    number: str
    """Its ``X:`` reference number."""
    header: dict[str, list[str]]
    """Header field letter -> its values in order (``T`` may repeat)."""
    body: list[str]
    """The tune's lines after ``K:``."""
    attributes: dict[str, Any] = field(default_factory=dict)
    """genre, and key / mode / meter / tempo / tempo_word where the header gives them in the suite's terms."""
    source_key: str = ""
    """``K:`` as written."""


def split_tunes(text: str) -> list[tuple[str, str]]:
    """A tune book's ``(X number, tune text)`` pairs; text before the first ``X:`` is the file header. A file with no
    ``X:`` at all is one tune (numbered 1) when it has a ``K:`` line."""
    if not re.search(r"^X:", text, flags=re.MULTILINE):
        return [("1", text.strip() + "\n")] if re.search(r"^K:", text, flags=re.MULTILINE) else []
    tunes: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        m = re.match(r"^X:\s*(\S*)", line)
        if m:
            tunes.append((m.group(1) or str(len(tunes) + 1), [line]))
        elif tunes:
            tunes[-1][1].append(line)
    return [(n, "\n".join(lines).strip() + "\n") for n, lines in tunes]


def parse_key(value: str) -> tuple[str, str] | None:
    """``K:`` -> (tonic, mode): ``"Ador"`` -> ("A", "dorian"), ``"Bbm"`` -> ("Bb", "minor"); None for ``HP``,
    ``none`` or an unknown mode."""
    m = re.match(r"^\s*([A-G])([#b]?)\s*([A-Za-z]*)", value)
    if not m or value.strip().lower().startswith(("hp", "none")):
        return None
    word = m.group(3).lower()
    mode = SUITE_MODES.get("m" if word == "m" else word[:3])
    return (m.group(1) + m.group(2), mode) if mode else None


def parse_meter(value: str) -> str | None:
    """``M:`` -> "6/8"; ``C`` is 4/4 and ``C|`` 2/2; None for ``none`` or free meter."""
    v = value.strip()
    if v == "C":
        return "4/4"
    if v == "C|":
        return "2/2"
    m = re.match(r"^(\d+)\s*/\s*(\d+)", v)
    return f"{m.group(1)}/{m.group(2)}" if m else None


def parse_tempo(value: str, unit: Fraction) -> tuple[Fraction, int] | None:
    """``Q:`` -> (beat length in whole notes, beats per minute): ``1/4=89``, ``"Allegro" 3/8=110``, or the old
    bare ``120`` (counted in the ``L:`` unit)."""
    m = re.search(r"(\d+)\s*/\s*(\d+)\s*=\s*(\d+)", value)
    if m:
        return Fraction(int(m.group(1)), int(m.group(2))), int(m.group(3))
    m = re.match(r"^\s*(\d+)\s*$", value)
    return (unit, int(m.group(1))) if m else None


def find_genre(texts: list[str]) -> tuple[str | None, str | None]:
    """(suite genre, the dance word found) from the first text that names a dance type; (None, None) if none."""
    for text in texts:
        for pattern, genre in GENRE_WORDS:
            m = re.search(pattern, text, flags=re.IGNORECASE)
            if m:
                return genre, m.group(0).lower()
    return None, None


def strip_genre(title: str) -> str:
    """A title without the dance-type word and the separator before it (``"Acacia -- Reel"`` -> ``"Acacia"``)."""
    out = title
    for pattern, _ in GENRE_WORDS:
        out = re.sub(rf"[\s,.;:-]*(?:{pattern})[\s.]*", " ", out, flags=re.IGNORECASE)
    return re.sub(r"\s+", " ", out).strip(" ,.;:-") or title.strip()


def parse_tune(number: str, text: str, file_stem: str = "") -> RealTune:
    """Header fields, body and attributes of one tune; ``TuneError`` when it has no key field, no notes or no
    genre the suite has. ``file_stem`` is a last place to find the genre (``AcaciaReel``)."""
    header: dict[str, list[str]] = {}
    body: list[str] = []
    in_body = False
    for raw in text.splitlines():
        line = raw.rstrip()
        if in_body:
            body.append(line)
            continue
        m = re.match(r"^([A-Za-z]):\s*(.*)$", line)
        if m:
            header.setdefault(m.group(1), []).append(re.sub(r"\s+%.*$", "", m.group(2)).strip())
            in_body = m.group(1) == "K"
    if "K" not in header:
        raise TuneError("no K: (key) header field")
    if not any(_NOTE.search(_music_part(line)) for line in body if line and not BODY_FIELDS.match(line)):
        raise TuneError("the tune body has no notes")
    stem = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", file_stem)
    genre, word = find_genre(header.get("R", []) + header.get("T", []) + [stem])
    if genre is None:
        raise TuneError(f"genre {word!r} is not one of the suite's" if word else "no dance type in R:, T: or the "
                        "file name")
    attrs: dict[str, Any] = {"genre": genre}
    key = parse_key(header["K"][-1])
    if key and key[0] in ENG["tonic"] and key[1] in ENG["key_mod"]:  # what the descriptions can say
        attrs["key"], attrs["mode"] = key
    meter = parse_meter(header["M"][0]) if "M" in header else None
    if meter:
        attrs["meter"] = meter
    if genre == "jig" and meter != "6/8":
        raise TuneError(f"a jig in {meter or 'no meter'}, not 6/8 (the suite's jigs are double jigs)")
    unit = Fraction(header["L"][0]) if "L" in header and re.match(r"^\d+/\d+$", header["L"][0]) else Fraction(1, 8)
    tempo = parse_tempo(header["Q"][0], unit) if "Q" in header else None
    if tempo and meter in METERS:
        bpm = round(tempo[1] * tempo[0] / Fraction(METERS[meter].tempo_unit))  # in the meter's beat
        attrs["tempo"], attrs["tempo_word"] = bpm, tempo_word(bpm, METERS[meter])
    return RealTune(number, header, body, attrs, header["K"][-1])


def _music_part(line: str) -> str:
    """A body line without quoted text, decorations and comments (what notes are searched in)."""
    line = re.sub(r'"[^"]*"', "", line.split("%", 1)[0])
    return re.sub(r"![^!]*!", "", line)


def _clean_line(line: str) -> str:
    """A body line without comments and quoted annotations other than chord symbols."""
    line = line.split("%", 1)[0].rstrip()

    def keep_chords(m: re.Match[str]) -> str:
        return m.group(0) if _CHORD.match(m.group(1).strip()) else ""

    line = re.sub(r'"([^"]*)"', keep_chords, line)
    # u / v (up- and down-bow) are the only lower-case symbols outside notes; abc2midi refuses them before a slur
    return re.sub(r'(![^!]*!|"[^"]*"|\[[A-Za-z]:[^\]]*\])|[uv]', lambda m: m.group(1) or "", line).rstrip()


def midi_abc(abc: str, attributes: dict[str, Any]) -> str:
    """The text abc2midi renders: without ``R:`` for a hornpipe outside 2/4 and 4/4 (abc2midi swings an
    ``R:hornpipe`` and refuses one in 2/2 or 3/2)."""
    if attributes.get("genre") == "hornpipe" and attributes.get("meter") not in ("2/4", "4/4"):
        return "".join(line for line in abc.splitlines(keepends=True) if not line.startswith("R:"))
    return abc


def clean_tune(tune: RealTune, number: int) -> str:
    """The tune as the corpus's ABC: X, T (without the dance word), R (the suite genre), M, L, Q, K, then the body
    without comments, lyrics, other info fields, text annotations or line continuations."""
    head = [f"X:{number}", f"T:{strip_genre(tune.header.get('T', [''])[0])}", f"R:{tune.attributes['genre']}"]
    head += [f"{f}{tune.header[f[0]][0]}" for f in KEEP_HEADER[1:-1] if f[0] in tune.header]
    head.append(f"K:{tune.source_key}")
    lines: list[str] = []
    pending = ""
    for raw in tune.body:
        if re.match(r"^[A-Za-z]:", raw) and not BODY_FIELDS.match(raw):
            continue  # w: lyrics, N: notes, W: words ...
        line = raw.rstrip() if BODY_FIELDS.match(raw) else _clean_line(raw)
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            lines.append(line)
    if pending.strip():
        lines.append(pending.strip())
    return "\n".join(head + lines) + "\n"
