"""What the TTS speaks: the units of a text, shared by the aligner, the duration model and the acoustic model."""

from __future__ import annotations

from text.normalize import normalize_transcript

EDGE = " "
"""The unit at each end of an utterance: leading and trailing silence, aligned like a word boundary."""


def char_units(text: str, lang: str | None = None) -> list[str]:
    """Characters of the normalised transcript (the suite's ASR alphabet) with a silence unit at each end.

    ``ValueError`` when nothing speakable is left (empty text, or only punctuation and symbols).
    """
    norm = normalize_transcript(text, lang)
    if not norm:
        raise ValueError(f"nothing to say in {text!r}: no letters or digits after normalisation")
    return [EDGE, *norm, EDGE]
