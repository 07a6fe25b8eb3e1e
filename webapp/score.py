"""Scores of symbolic music search results: the notes of a MIDI file (or of an ABC tune, through abc2midi) drawn as
a piano roll, so a result can be read at a glance without a notation renderer in the page."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

ABC_SUFFIXES = (".abc",)
MIDI_SUFFIXES = (".mid", ".midi")
SCORE_SUFFIXES = ABC_SUFFIXES + MIDI_SUFFIXES
"""Results drawn as a score."""
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


@dataclass(frozen=True)
class Note:
    """One sounding note."""

    start: float
    """Onset in beats (quarter notes)."""
    length: float
    """Duration in beats."""
    pitch: int
    """MIDI note number."""
    channel: int


def midi_notes(path: str | Path) -> list[Note]:
    """Every note of a MIDI file, in beats; ``ValueError`` naming the file when it can't be read."""
    import mido

    try:
        mid = mido.MidiFile(str(path))
    except Exception as e:  # mido raises OSError, EOFError, KeyError, ValueError on damaged files
        raise ValueError(f"{Path(path).name}: unreadable MIDI ({type(e).__name__}: {e})") from None
    per_beat = float(mid.ticks_per_beat or 480)
    notes: list[Note] = []
    for track in mid.tracks:
        tick = 0
        open_at: dict[tuple[int, int], int] = {}  # (channel, pitch) -> onset tick
        for msg in track:
            tick += msg.time
            if msg.type not in ("note_on", "note_off"):
                continue
            key = (msg.channel, msg.note)
            if msg.type == "note_on" and msg.velocity > 0:
                open_at.setdefault(key, tick)
            elif key in open_at:
                start = open_at.pop(key)
                notes.append(Note(start / per_beat, max(tick - start, 1) / per_beat, msg.note, msg.channel))
    return sorted(notes, key=lambda n: (n.start, n.pitch))


def abc_notes(path: str | Path) -> list[Note]:
    """The notes of an ABC file, rendered to MIDI by abc2midi; ``ValueError`` when abc2midi is missing or refuses."""
    from datamodules.corpus.music_render import RenderError, abc_to_midi

    if shutil.which("abc2midi") is None:
        raise ValueError("abc2midi is not installed (apt-get install abcmidi), so no score is drawn")
    p = Path(path)
    with tempfile.TemporaryDirectory(prefix="polyglot-app-abc-") as tmp:
        mid = Path(tmp) / "tune.mid"
        try:
            abc_to_midi(p.read_text(encoding="utf-8", errors="replace"), mid, p.name, timeout=20)
        except RenderError as e:
            raise ValueError(str(e)) from None
        return midi_notes(mid)


def notes_of(path: str | Path) -> list[Note]:
    """The notes of an ABC or MIDI file, by its suffix."""
    return abc_notes(path) if Path(path).suffix.lower() in ABC_SUFFIXES else midi_notes(path)


def piano_roll(notes: list[Note], title: str, out: Path) -> Path:
    """A PNG of ``notes`` as bars over time (beats) and pitch, one colour per channel."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 2.4), dpi=100)
    FigureCanvasAgg(fig)  # a figure of its own, not pyplot's global state: requests run in worker threads
    ax = fig.add_subplot()
    colours = ("#1f5fd6", "#d62f1f", "#2a9d3c", "#b58900", "#6c3fb5", "#333333")
    for n in notes:
        ax.broken_barh([(n.start, n.length)], (n.pitch - 0.4, 0.8), facecolors=colours[n.channel % len(colours)])
    if notes:
        lo, hi = min(n.pitch for n in notes), max(n.pitch for n in notes)
        ax.set_ylim(lo - 2, hi + 2)
        ax.set_xlim(0, max(n.start + n.length for n in notes))
        ticks = [p for p in range(lo - 1, hi + 2) if p % 12 in (0, 4, 7)]  # C, E, G of each octave
        ax.set_yticks(ticks, [f"{NOTE_NAMES[p % 12]}{p // 12 - 1}" for p in ticks], fontsize=7)
    else:
        ax.text(0.5, 0.5, "no notes", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("beats", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title, fontsize=9, loc="left")
    fig.tight_layout()
    fig.savefig(out)
    return out
