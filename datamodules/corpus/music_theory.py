"""Keys, modes, scale degrees and their spelling in ABC: the pitch vocabulary of the music corpus composer.

Melodies are written as scale degrees of the tune's mode (``step`` 0 is the tonic next above middle C's octave
start), so every note is diatonic unless it carries an explicit ``alter`` (the raised leading tone of minor).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

LETTERS = "CDEFGAB"
NATURAL = (0, 2, 4, 5, 7, 9, 11)
"""Semitones of the natural letters above C."""
MODES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
}
"""Mode -> semitones of its seven degrees above the tonic."""
KEYS: dict[str, tuple[str, ...]] = {
    "major": ("C", "G", "D", "A", "E", "F", "Bb", "Eb"),
    "minor": ("A", "E", "B", "D", "G", "C"),
    "dorian": ("D", "A", "E", "G"),
    "mixolydian": ("G", "D", "A", "C"),
}
"""Mode -> tonics the composer uses (key signatures of at most four sharps or three flats)."""
ABC_MODE = {"major": "", "minor": "m", "dorian": "dor", "mixolydian": "mix"}
"""Mode suffix of an ABC ``K:`` field."""
REGISTERS: dict[str, tuple[int, int]] = {"low": (50, 69), "mid": (60, 79), "high": (69, 88)}
"""Register -> MIDI range of the melody (inclusive)."""


@dataclass(frozen=True)
class Note:
    """One melody event."""

    step: int | None
    """Scale degree counted from the tonic (7 = the tonic an octave up, negative below); None is a rest."""
    dur: Fraction
    """Length in units of the tune's ``L:`` (unit note length)."""
    alter: int = 0
    """Semitones added to the diatonic pitch (+1: raised leading tone)."""


@dataclass(frozen=True)
class Key:
    """A tonic and a mode, with the spelling facts the ABC writer needs."""

    tonic: str
    """Tonic letter with an optional "b" or "#" ("D", "Bb", "F#")."""
    mode: str
    """major, minor, dorian or mixolydian."""

    @property
    def letter(self) -> int:
        """Index of the tonic letter in C D E F G A B."""
        return LETTERS.index(self.tonic[0])

    @property
    def tonic_pc(self) -> int:
        """Pitch class of the tonic."""
        return (NATURAL[self.letter] + {"b": -1, "#": 1}.get(self.tonic[1:], 0)) % 12

    def signature(self) -> dict[int, int]:
        """Letter index -> accidental (-1, 0, +1) of the key signature."""
        out = {}
        for d, semis in enumerate(MODES[self.mode]):
            letter = (self.letter + d) % 7
            out[letter] = (self.tonic_pc + semis - NATURAL[letter] + 6) % 12 - 6
        return out

    def abc(self) -> str:
        """The ``K:`` value ("D", "Am", "Edor", "Bb")."""
        return self.tonic + ABC_MODE[self.mode]

    def letter_octave(self, step: int) -> tuple[int, int]:
        """Letter index and scientific octave of a scale step (step 0 lies in octave 4)."""
        pos = self.letter + step
        return pos % 7, 4 + pos // 7

    def midi(self, note: Note) -> int:
        """MIDI pitch of a (non-rest) note."""
        assert note.step is not None
        letter, octave = self.letter_octave(note.step)
        return 12 * (octave + 1) + NATURAL[letter] + self.signature()[letter] + note.alter

    def step_range(self, register: str) -> tuple[int, int]:
        """Lowest and highest scale step whose pitch lies in ``register``."""
        lo, hi = REGISTERS[register]
        steps = [s for s in range(-14, 22) if lo <= self.midi(Note(s, Fraction(1))) <= hi]
        return steps[0], steps[-1]

    def chord_name(self, root: int, raised: bool = False) -> str:
        """Chord symbol of the triad on degree ``root`` ("D", "Bm", "F#dim"); ``raised``: major V in minor."""
        semis = MODES[self.mode]
        third = (semis[(root + 2) % 7] - semis[root % 7]) % 12 + (1 if raised else 0)
        fifth = (semis[(root + 4) % 7] - semis[root % 7]) % 12
        letter = (self.letter + root) % 7
        acc = {-1: "b", 0: "", 1: "#"}[self.signature()[letter]]
        quality = "dim" if fifth == 6 else ("" if third == 4 else "m")
        return LETTERS[letter] + acc + quality


def chord_tones(root: int) -> tuple[int, int, int]:
    """Scale degrees (0-6) of the triad on ``root``."""
    return root % 7, (root + 2) % 7, (root + 4) % 7


def raises_leading_tone(key: Key, root: int) -> bool:
    """Minor keys take the harmonic-minor V (raised seventh degree) at cadences."""
    return key.mode == "minor" and root % 7 == 4


def abc_pitch(key: Key, note: Note) -> str:
    """ABC spelling of a note under the key signature, with an explicit accidental only for an altered note."""
    if note.step is None:
        return "z"
    letter, octave = key.letter_octave(note.step)
    acc = ""
    if note.alter:
        total = key.signature()[letter] + note.alter
        acc = {-2: "__", -1: "_", 0: "=", 1: "^", 2: "^^"}[total]
    name = LETTERS[letter]
    if octave >= 5:
        return acc + name.lower() + "'" * (octave - 5)
    return acc + name + "," * (4 - octave)


def abc_length(dur: Fraction) -> str:
    """ABC length suffix of ``dur`` units ("", "2", "/2", "3/2")."""
    if dur == 1:
        return ""
    if dur.denominator == 1:
        return str(dur.numerator)
    if dur.numerator == 1:
        return f"/{dur.denominator}"
    return f"{dur.numerator}/{dur.denominator}"
