"""MIDI as text (MTF, CLaMP 3): every message of a MIDI file, tracks merged in time order, one line each.

A line is the message type then its values in mido's order, the delta time in ticks first:
``note_on 120 0 62 80`` (time, channel, note, velocity). The first line gives the resolution
(``ticks_per_beat 480``). Text-only meta messages (track names, lyrics, copyright) are left out: they name files,
not music.
"""

from __future__ import annotations

import os

MIDI_EXTS = (".mid", ".midi")
SKIP = frozenset({"track_name", "text", "copyright", "lyrics", "marker", "cue_marker", "instrument_name",
                  "device_name", "program_name", "sequencer_specific", "end_of_track", "sysex"})
"""Message types that carry no music for retrieval."""


def message_line(msg: object, time: int) -> str:
    """One mido message as an MTF line, with ``time`` as its delta in ticks."""
    data = msg.dict()  # type: ignore[attr-defined]
    kind = data.pop("type")
    data.pop("time", None)
    values = [str(time)] + [str(v).replace(" ", "_") for v in data.values()]
    return " ".join([kind, *values])


def midi_to_mtf(path: str | os.PathLike[str], max_lines: int | None = None) -> str:
    """The MTF text of a MIDI file; ``ValueError`` names why a file can't be read."""
    import mido

    try:
        midi = mido.MidiFile(str(path))
    except (OSError, EOFError, ValueError, KeyError, IndexError) as e:
        raise ValueError(f"broken MIDI ({type(e).__name__}: {e or 'the file ends early'})") from None
    lines = [f"ticks_per_beat {midi.ticks_per_beat}"]
    pending = 0  # delta ticks of skipped messages move onto the next kept one
    for msg in mido.merge_tracks(midi.tracks):
        pending += int(msg.time)
        if msg.type in SKIP:
            continue
        lines.append(message_line(msg, pending))
        pending = 0
        if max_lines is not None and len(lines) >= max_lines:
            break
    if not any(line.startswith("note_on") for line in lines):
        raise ValueError("no notes (the MIDI file holds no note_on message)")
    return "\n".join(lines) + "\n"
