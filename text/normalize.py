"""Transcript normalisation shared by training targets and scoring."""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")
_APOSTROPHES = re.compile(r"(?<=\w)[\u2019\u02bc'](?=\w)")


_TURKIC = ("tur", "aze", "tat", "kaz", "crh", "gag")


def lowercase(text: str, lang: str | None = None) -> str:
    """Lower case; dotted capital İ becomes i everywhere, and in Turkic languages dotless I becomes ı."""
    if lang is not None and lang.split("_", 1)[0] in _TURKIC:
        text = text.replace("I", "ı")
    return text.replace("İ", "i").lower()


def normalize_transcript(text: str, lang: str | None = None) -> str:
    """NFC, lower case, punctuation and symbols replaced by spaces, whitespace collapsed.

    Letters, combining marks (Devanagari matras, Arabic shadda), digits and word-internal
    apostrophes (Ukrainian, Italian, French) are kept, so any script passes through; only what a
    listener can't hear (punctuation, casing) goes. ``lang`` only matters for casing rules that
    depend on it (Turkish I/ı).
    """
    text = _APOSTROPHES.sub("\x00", lowercase(unicodedata.normalize("NFC", text), lang))
    kept = [c if unicodedata.category(c)[0] in "LMN" else "'" if c == "\x00" else " " for c in text]
    return _SPACES.sub(" ", "".join(kept)).strip()


def script_of(char: str) -> str:
    """Unicode script family of a letter, from its character name (``LATIN``, ``CYRILLIC``...)."""
    try:
        return unicodedata.name(char).split(" ")[0]
    except ValueError:
        return "UNKNOWN"
