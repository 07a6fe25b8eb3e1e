"""ABC writer: a composed tune as standard ABC 2.1 that abc2midi and music21 both read.

Header fields X, T, R (rhythm), M, L, Q and K; the instrument as ``%%MIDI program``, dynamics as a ``!p!`` /
``!mf!`` / ``!f!`` decoration on each voice's first note, accompaniment chords as quoted chord symbols with
``%%MIDI gchord``; each 8-bar part between repeat signs. Chorales write four voices ``V:1``..``V:4`` (music21
splits numbered voices into parts) with fermatas on the phrase-final chords.
"""

from __future__ import annotations

import random
from fractions import Fraction

from datamodules.corpus.music_compose import Bar, Tune
from datamodules.corpus.music_forms import FORMS
from datamodules.corpus.music_theory import Note, abc_length, abc_pitch, raises_leading_tone

GM_PROGRAMS = {"Acoustic Grand Piano": 0, "Church Organ": 19, "Accordion": 21, "Acoustic Guitar (nylon)": 24,
               "Violin": 40, "String Ensemble 1": 48, "Choir Aahs": 52, "Trumpet": 56, "Clarinet": 71,
               "Piccolo": 72, "Flute": 73, "Pan Flute": 75, "Banjo": 105, "Bagpipe": 109}
"""General MIDI instrument name -> program number (0-based, as ``%%MIDI program`` takes it)."""
_TITLE_ADJ = ("Green", "Windy", "Silver", "Old", "Lonely", "Merry", "Golden", "Stony", "Quiet", "Crooked", "High",
              "Morning", "Humours of the", "Far", "Little", "Broad")
_TITLE_NOUN = ("Meadow", "Harbour", "Mill", "Bridge", "Glen", "Road", "Hill", "Lark", "Ferry", "Orchard", "Tower",
               "Garden", "River", "Market", "Chapel", "Island", "Lantern")


def title(seed: int | str) -> str:
    """A tune title in the traditional manner ("The Windy Harbour"), fixed by the seed."""
    rng = random.Random(f"title:{seed}")
    return f"The {rng.choice(_TITLE_ADJ)} {rng.choice(_TITLE_NOUN)}"


def _bar_text(tune: Tune, bar: Bar, voice: int, first: bool, chords: bool) -> str:
    key, meter = tune.key, tune.meter
    out: list[str] = []
    onset = Fraction(0)
    notes: list[Note] = bar.voices[voice]
    for i, n in enumerate(notes):
        token = ""
        if i == 0 and first:
            token += f"!{tune.attributes['dynamics']}!"
        if i == 0 and chords:
            token += f'"{key.chord_name(bar.chord, raises_leading_tone(key, bar.chord))}"'
        if bar.cadence and i == len(notes) - 1 and FORMS[tune.attributes["genre"]].voices == 4:
            token += "!fermata!"
        token += abc_pitch(key, n) + abc_length(n.dur)
        if out and (onset % meter.beat == 0 or meter.beat == 1):
            out.append(" ")  # a beam breaks at every beat
        out.append(token)
        onset += n.dur
    return "".join(out)


def _voice_body(tune: Tune, voice: int, chords: bool) -> list[str]:
    lines = []
    for k, name in enumerate(("A", "B")):
        bars = [_bar_text(tune, b, voice, k == 0 and i == 0, chords) for i, b in enumerate(tune.parts[name])]
        lines.append("|: " + " | ".join(bars[:4]) + " |")
        lines.append(" | ".join(bars[4:]) + " :|")
    return lines


def tune_abc(tune: Tune, number: int = 1, name: str = "") -> str:
    """The complete ABC text of ``tune`` (reference number ``number``, title ``name``)."""
    a = tune.attributes
    form = FORMS[a["genre"]]
    meter = tune.meter
    program = GM_PROGRAMS[a["instrument"]]
    head = [f"X:{number}", f"T:{name or title(number)}", f"R:{a['genre']}", f"M:{meter.name}",
            f"L:{meter.unit.numerator}/{meter.unit.denominator}", f"Q:{meter.tempo_unit}={a['tempo']}"]
    if form.voices == 1:
        head.append(f"%%MIDI program {program}")
        if form.gchord:
            head.append(f"%%MIDI gchord {form.gchord}")
        head.append(f"K:{tune.key.abc()}")
        return "\n".join(head + _voice_body(tune, 0, bool(form.gchord))) + "\n"
    head.append(f"K:{tune.key.abc()}")
    body: list[str] = []
    for v, label in enumerate(("Soprano", "Alto", "Tenor", "Bass")):
        clef = " clef=bass" if label == "Bass" else ""
        body += [f'V:{v + 1} name="{label}"{clef}', f"%%MIDI program {program}", *_voice_body(tune, v, False)]
    return "\n".join(head + body) + "\n"


def excerpt_abc(tune: Tune, number: int = 1) -> str:
    """The A part once, without repeats: what the audio renders (a cheap, short excerpt)."""
    text = tune_abc(tune, number)
    lines = []
    for line in text.splitlines():
        if line.startswith("|: "):
            line = line[3:]
        lines.append(line.replace(" :|", " |]"))
    out: list[str] = []
    skip = 0
    for line in lines:  # keep each voice's first two body lines (part A), drop part B's two
        if line.startswith(("V:", "K:")):
            skip = 0
        elif not line.startswith(("%", "X:", "T:", "R:", "M:", "L:", "Q:")):
            skip += 1
            if skip > 2:
                continue
        out.append(line)
    return "\n".join(out) + "\n"
