"""Dance and hymn forms: meters, bar rhythms, tempi, instruments and the harmony plan of an 8-bar part.

Every form is AABB: two 8-bar parts, each an antecedent phrase (bars 1-4, half cadence on V) answered by a
consequent (bars 5-8, authentic cadence V-I). Rhythms are lengths in units of ``L:`` (1/8 for dances, 1/4 for
chorales); a bar picks one pattern, and phrase ends pick a cadence pattern that lands on a long note.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction

F = Fraction
Rhythm = tuple[Fraction, ...]


def _r(*lengths: float | Fraction) -> Rhythm:
    return tuple(F(x).limit_denominator(8) for x in lengths)


@dataclass(frozen=True)
class Meter:
    """A time signature with its beat grouping and rhythm repertoire."""

    name: str
    """Time signature as written after ``M:`` ("6/8")."""
    unit: Fraction
    """Unit note length (``L:``)."""
    beat: Fraction
    """Beat length in units (3 in 6/8: beams and the tempo unit follow it)."""
    bar: Fraction
    """Bar length in units."""
    tempo_unit: str
    """Note value the ``Q:`` tempo counts ("1/4", "3/8", "1/2")."""


METERS: dict[str, Meter] = {
    "4/4": Meter("4/4", F(1, 8), F(4), F(8), "1/2"),
    "2/2": Meter("2/2", F(1, 8), F(4), F(8), "1/2"),
    "2/4": Meter("2/4", F(1, 8), F(2), F(4), "1/4"),
    "3/4": Meter("3/4", F(1, 8), F(2), F(6), "1/4"),
    "6/8": Meter("6/8", F(1, 8), F(3), F(6), "3/8"),
    "chorale": Meter("4/4", F(1, 4), F(1), F(4), "1/4"),
}
"""Meter id -> meter; ``chorale`` is 4/4 counted in crotchets (``L:1/4``)."""


@dataclass(frozen=True)
class Form:
    """A genre: its meters, rhythms, tempo range and the instruments that play it."""

    name: str
    """Genre id (jig, reel, ...)."""
    meters: tuple[str, ...]
    """Meter ids it is written in."""
    rhythms: dict[str, tuple[Rhythm, ...]]
    """Meter id -> bar patterns inside a phrase."""
    cadences: dict[str, tuple[Rhythm, ...]]
    """Meter id -> bar patterns at a phrase end (the last note is long)."""
    tempo: tuple[int, int]
    """Tempo range in beats of the meter's ``tempo_unit`` per minute (halves in 4/4 and 2/2, dotted crotchets in
    6/8), as a player counts it and ``Q:`` writes it."""
    instruments: tuple[str, ...]
    """General MIDI instrument names that play this form."""
    gchord: str = ""
    """abc2midi accompaniment pattern for chord symbols ("fcc": bass then two chords); empty: melody alone."""
    voices: int = 1
    """1 (melody) or 4 (SATB chorale)."""


_JIG_BAR = tuple(a + b for a in (_r(1, 1, 1), _r(2, 1)) for b in (_r(1, 1, 1), _r(2, 1), _r(1, 1, 1)))
_JIG_END = (_r(1, 1, 1, 3), _r(2, 1, 3), _r(3, 2, 1))
_REEL_BAR = (_r(1, 1, 1, 1, 1, 1, 1, 1),) * 4 + (_r(2, 1, 1, 1, 1, 1, 1), _r(1, 1, 1, 1, 2, 1, 1))
_REEL_END = (_r(1, 1, 1, 1, 2, 2), _r(1, 1, 2, 4), _r(2, 2, 4))
_DOTTED = _r(1.5, 0.5)
FORMS: dict[str, Form] = {f.name: f for f in (
    Form("jig", ("6/8",), {"6/8": _JIG_BAR}, {"6/8": _JIG_END}, (92, 126),
         ("Violin", "Flute", "Accordion", "Pan Flute")),
    Form("reel", ("4/4", "2/2"), {"4/4": _REEL_BAR, "2/2": _REEL_BAR}, {"4/4": _REEL_END, "2/2": _REEL_END},
         (80, 116), ("Violin", "Flute", "Accordion", "Banjo")),
    Form("hornpipe", ("4/4",), {"4/4": (_DOTTED * 4, _DOTTED * 2 + _r(1, 1, 1, 1), _DOTTED * 3 + _r(1, 1))},
         {"4/4": (_DOTTED * 2 + _r(2, 2), _DOTTED + _r(2, 2, 2))}, (56, 80), ("Violin", "Accordion", "Clarinet")),
    Form("waltz", ("3/4",), {"3/4": (_r(4, 2), _r(2, 2, 2), _r(2, 1, 1, 2), _r(3, 1, 2))},
         {"3/4": (_r(6), _r(4, 2))}, (84, 176), ("Acoustic Grand Piano", "Accordion", "Violin", "Clarinet"),
         gchord="fcc"),
    Form("march", ("2/4", "6/8"), {"2/4": (_r(1, 1, 1, 1), _r(1.5, 0.5, 1, 1), _r(2, 1, 1), _DOTTED * 2),
                                   "6/8": _JIG_BAR},
         {"2/4": (_r(2, 2), _r(1, 1, 2)), "6/8": (_r(3, 3), _r(2, 1, 3))}, (96, 124),
         ("Trumpet", "Clarinet", "Piccolo", "Bagpipe"), gchord="fc"),
    Form("polka", ("2/4",), {"2/4": (_r(1, 1, 1, 1), _r(0.5, 0.5, 1, 1, 1), _r(1, 1, 2), _r(1, 0.5, 0.5, 1, 1))},
         {"2/4": (_r(2, 2), _r(1, 1, 2))}, (108, 152), ("Accordion", "Clarinet", "Violin", "Trumpet"), gchord="fc"),
    Form("chorale", ("chorale",), {"chorale": (_r(1, 1, 1, 1),) * 3 + (_r(2, 1, 1), _r(1, 1, 2))},
         {"chorale": (_r(2, 2), _r(1, 1, 2))}, (54, 100), ("Church Organ", "String Ensemble 1", "Choir Aahs"),
         voices=4),
)}
"""Genre id -> form."""

_ANTECEDENT = ((0, 0, 3, 4), (0, 3, 0, 4), (0, 5, 3, 4), (0, 4, 0, 4), (0, 1, 3, 4))
_B_ANTECEDENT = ((3, 3, 0, 4), (3, 0, 3, 4), (5, 3, 0, 4), (3, 4, 0, 4), (5, 5, 3, 4))
_CONSEQUENT = ((0, 3, 4, 0), (0, 5, 4, 0), (0, 0, 4, 0), (0, 1, 4, 0), (3, 0, 4, 0))


def harmony_plan(part: str, mode: str, rng: random.Random) -> list[int]:
    """Chord roots (scale degrees) of the eight bars of part A or B: half cadence on V, full cadence V-I.

    Modal tunes (dorian, mixolydian) swap some inner V chords for the subtonic VII that gives them their colour.
    """
    first = list(rng.choice(_ANTECEDENT if part == "A" else _B_ANTECEDENT))
    second = list(rng.choice(_CONSEQUENT))
    if mode in ("dorian", "mixolydian"):
        first = [6 if (r == 4 and i < 3 and rng.random() < 0.7) else r for i, r in enumerate(first)]
        second = [6 if (r == 3 and rng.random() < 0.5) else r for r in second]
    return first + second


def tempo_word(bpm: int, meter: Meter) -> str:
    """slow, moderate or fast, judged on the crotchet pace (a 6/8 beat is three quavers)."""
    per_quarter = {"1/4": 1.0, "3/8": 1.5, "1/2": 2.0}[meter.tempo_unit] * bpm
    return "slow" if per_quarter < 96 else ("moderate" if per_quarter < 150 else "fast")
