"""The tune composer: attributes in, an AABB tune of scale-degree notes out (melody, or four SATB voices).

A part is a parallel period: the consequent (bars 5-8) opens with the antecedent's first bar moved along the
contour as a sequence (its chord moves with it), and each phrase closes on a cadence pattern (V at bar 4, I at
bar 8). Strong beats take chord tones near the contour's target pitch; weak ones pass or turn by step, so the
line moves like a tune rather than a random walk. Chorales harmonise each soprano note (bass on the root, alto
and tenor on the remaining chord tones, nearest to where they were).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from datamodules.corpus.music_forms import FORMS, METERS, Meter, harmony_plan
from datamodules.corpus.music_theory import Key, Note, chord_tones, raises_leading_tone

CONTOURS = ("ascending", "descending", "arch", "valley")
"""Melodic contours over each 8-bar part."""
SATB = {"S": (60, 81), "A": (53, 74), "T": (48, 69), "B": (38, 62)}
"""Chorale voice ranges (MIDI, inclusive) before the register shift."""


@dataclass
class Bar:
    """One bar of every voice."""

    chord: int
    """Chord root (scale degree) that the bar's harmony starts on."""
    voices: list[list[Note]]
    """Notes per voice (melody first; SATB order for chorales)."""
    cadence: bool = False
    """Ends a phrase."""


@dataclass
class Tune:
    """A composed tune and the attributes it was composed from."""

    attributes: dict[str, Any]
    """Contract attributes (key, mode, meter, tempo, genre, instrument, contour, register, dynamics)."""
    key: Key
    """Tonic and mode."""
    meter: Meter
    """Meter with its ``L:`` and beat grouping."""
    parts: dict[str, list[Bar]] = field(default_factory=dict)
    """"A" and "B": eight bars each, each played twice."""


def contour_target(contour: str, t: float) -> float:
    """Height of the contour at time ``t`` in [0, 1] of a part, in [0, 1]."""
    return {"ascending": t, "descending": 1 - t, "arch": math.sin(math.pi * t),
            "valley": 1 - math.sin(math.pi * t)}[contour]


def _nearest(candidates: list[int], target: float, rng: random.Random, jitter: float = 1.0) -> int:
    return min(candidates, key=lambda s: abs(s - target) + rng.uniform(0, jitter))


def _melody_bar(key: Key, rhythm: tuple[Fraction, ...], chord: int, targets: tuple[float, float],
                lo: int, hi: int, prev: int, meter: Meter, rng: random.Random, final: int | None) -> list[Note]:
    """One bar of melody over ``chord``; ``targets`` are the contour heights (as steps) at its start and end.

    ``final``: the degree (0-6) the bar's last note must be (a cadence), or None.
    """
    tones = set(chord_tones(chord))
    notes: list[Note] = []
    onset = Fraction(0)
    for i, dur in enumerate(rhythm):
        target = targets[0] + (targets[1] - targets[0]) * float(onset / meter.bar)
        last = i == len(rhythm) - 1
        near = [s for s in range(lo, hi + 1) if abs(s - prev) <= 5] or list(range(lo, hi + 1))
        if last and final is not None:
            step = _nearest([s for s in near if s % 7 == final] or [s for s in range(lo, hi + 1) if s % 7 == final],
                            target, rng, 0.5)
        elif onset % meter.beat == 0 or rng.random() < 0.3:
            # near the contour, small leaps over big ones, and rarely the same note again
            step = min([s for s in near if s % 7 in tones] or near,
                       key=lambda s: abs(s - target) + 0.3 * abs(s - prev) + 3.0 * (s == prev) + rng.uniform(0, 1.5))
        else:  # passing or neighbour note: a step towards the target, or back when already there
            direction = 1 if target > prev + 0.5 else (-1 if target < prev - 0.5 else rng.choice((-1, 1)))
            step = min(max(prev + direction, lo), hi)
        alter = 1 if raises_leading_tone(key, chord) and step % 7 == 6 else 0
        if key.mode == "minor" and raises_leading_tone(key, chord) and step % 7 == 5:
            step -= 1  # no augmented second against the raised seventh
        notes.append(Note(step, dur, alter))
        prev, onset = step, onset + dur
    return notes


def _part(tune: Tune, name: str, rng: random.Random, lo: int, hi: int, prev: int) -> list[Bar]:
    form, key, meter = FORMS[tune.attributes["genre"]], tune.key, tune.meter
    meter_id = "chorale" if form.voices == 4 else tune.attributes["meter"]
    chords = harmony_plan(name, key.mode, rng)
    margin = 1
    height = [lo + margin + contour_target(tune.attributes["contour"], b / 8) * (hi - lo - 2 * margin)
              for b in range(9)]
    bars: list[Bar] = []
    for b in range(8):
        cadence = b in (3, 7)
        if b == 4 and bars:  # the consequent restates bar 1 as a sequence along the contour
            shift = max(-4, min(4, round(height[4] - height[0])))
            first = bars[0].voices[0]
            if all(lo <= n.step + shift <= hi for n in first if n.step is not None):
                chord = (bars[0].chord + shift) % 7
                raised = raises_leading_tone(key, chord)
                notes = [Note(None, n.dur) if n.step is None else
                         Note(n.step + shift, n.dur, int(raised and (n.step + shift) % 7 == 6)) for n in first]
                bars.append(Bar(chord, [notes]))
                prev = notes[-1].step if notes[-1].step is not None else prev
                continue
        rhythm = rng.choice((form.cadences if cadence else form.rhythms)[meter_id])
        final = (0 if b == 7 else rng.choice((4, 1, 6))) if cadence else None
        if final == 6 and key.mode in ("dorian", "mixolydian"):
            final = 4  # their seventh is a whole tone below the tonic: no leading tone to hang on
        notes = _melody_bar(key, rhythm, chords[b], (height[b], height[b + 1]), lo, hi, prev, meter, rng, final)
        bars.append(Bar(chords[b], [notes], cadence))
        prev = notes[-1].step if notes[-1].step is not None else prev
    return bars


def _harmonise(key: Key, bar: Bar, prev: list[int], ranges: dict[str, tuple[int, int]], rng: random.Random,
               last_bar: bool) -> list[int]:
    """Add alto, tenor and bass to a chorale bar (in place); returns the voices' last steps."""
    soprano = bar.voices[0]
    lines: list[list[Note]] = [[], [], []]
    for i, s in enumerate(soprano):
        assert s.step is not None
        if bar.cadence and i == len(soprano) - 1:
            root = 0 if last_bar else 4
        elif i == 0:
            root = bar.chord if s.step % 7 in chord_tones(bar.chord) else 0
        else:
            roots = [r for r in (0, 3, 4, 5, 1) if s.step % 7 in chord_tones(r)]
            root = rng.choice(roots) if roots else bar.chord
        if bar.cadence and i == len(soprano) - 2 and s.step % 7 in chord_tones(4):
            root = 4  # the dominant before the cadence's last chord
        tones = chord_tones(root)
        raised = raises_leading_tone(key, root)
        bass = _nearest([x for x in range(*ranges["B"]) if x % 7 == root], prev[2], rng, 0.5)
        best: tuple[float, int, int] | None = None
        for a in range(*ranges["A"]):
            for t in range(*ranges["T"]):
                if not (s.step > a > t > bass) or a % 7 not in tones or t % 7 not in tones:
                    continue
                missing = len(set(tones) - {s.step % 7, a % 7, t % 7, bass % 7})
                spread = max(0, s.step - a - 7) + max(0, a - t - 7)
                cost = abs(a - prev[0]) + abs(t - prev[1]) + 4 * missing + 3 * spread + rng.uniform(0, 0.5)
                if best is None or cost < best[0]:
                    best = (cost, a, t)
        a, t = (best[1], best[2]) if best else (s.step - 2, s.step - 4)
        for line, step in zip(lines, (a, t, bass)):
            line.append(Note(step, s.dur, 1 if raised and step % 7 == 6 else 0))
        prev = [a, t, bass]
    bar.voices.extend(lines)
    return prev


def _steps(key: Key, midi_lo: int, midi_hi: int) -> tuple[int, int]:
    steps = [s for s in range(-21, 22) if midi_lo <= key.midi(Note(s, Fraction(1))) <= midi_hi]
    return steps[0], steps[-1] + 1


def compose(attributes: dict[str, Any], seed: int | str) -> Tune:
    """The tune for ``attributes`` (deterministic for a seed)."""
    rng = random.Random(seed)
    key = Key(attributes["key"], attributes["mode"])
    form = FORMS[attributes["genre"]]
    meter = METERS["chorale" if form.voices == 4 else attributes["meter"]]
    tune = Tune(dict(attributes), key, meter)
    shift = {"low": -12, "mid": 0, "high": 12}[attributes["register"]]
    if form.voices == 4:
        ranges = {v: _steps(key, lo + shift, hi + shift) for v, (lo, hi) in SATB.items()}
        lo, hi = ranges["S"][0], ranges["S"][1] - 1
    else:
        lo, hi = key.step_range(attributes["register"])
    prev = (lo + hi) // 2
    for name in ("A", "B"):
        bars = _part(tune, name, rng, lo, hi, prev)
        tune.parts[name] = bars
        last = bars[-1].voices[0][-1].step
        prev = last if last is not None else prev
    if form.voices == 4:
        inner = [ranges["A"][1] - 3, ranges["T"][1] - 4, (ranges["B"][0] + ranges["B"][1]) // 2]
        for name in ("A", "B"):
            for i, bar in enumerate(tune.parts[name]):
                inner = _harmonise(key, bar, inner, ranges, rng, i == 7)
    return tune


def melody_steps(tune: Tune, part: str = "A") -> list[int]:
    """The melody's sounding scale steps in one part (tests read the contour off these)."""
    return [n.step for bar in tune.parts[part] for n in bar.voices[0] if n.step is not None]
