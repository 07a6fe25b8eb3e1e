"""Transcript normalisation shared by training targets and scoring."""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")
_APOSTROPHES = re.compile(r"(?<=\w)[\u2019\u02bc'](?=\w)")


def normalize_transcript(text: str) -> str:
    """NFC, lower case, punctuation and symbols replaced by spaces, whitespace collapsed.

    Letters, combining marks (Devanagari matras, Arabic shadda), digits and word-internal
    apostrophes (Ukrainian, Italian, French) are kept, so any script passes through; only what a
    listener can't hear (punctuation, casing) goes.
    """
    text = _APOSTROPHES.sub("\x00", unicodedata.normalize("NFC", text).lower())
    kept = [c if unicodedata.category(c)[0] in "LMN" else "'" if c == "\x00" else " " for c in text]
    return _SPACES.sub(" ", "".join(kept)).strip()


def script_of(char: str) -> str:
    """Unicode script family of a letter, from its character name (``LATIN``, ``CYRILLIC``...)."""
    try:
        return unicodedata.name(char).split(" ")[0]
    except ValueError:
        return "UNKNOWN"
