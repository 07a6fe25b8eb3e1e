"""Languages the generated corpora know, with the tools that speak, spell and name in each."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LangSpec:
    """How to render and write text for one language."""

    espeak: str
    """espeak-ng voice name."""
    cldr: str
    """babel/CLDR locale for names of places, languages, months and units."""
    num2words: str | None = None
    """num2words language for spelled-out numbers (None where it has none)."""
    wordfreq: str | None = None
    """wordfreq language for a broad lexicon of common words (None where it has none)."""


LANGUAGES: dict[str, LangSpec] = {
    "deu_Latn": LangSpec("de", "de", "de", "de"),
    "spa_Latn": LangSpec("es", "es", "es", "es"),
    "ita_Latn": LangSpec("it", "it", "it", "it"),
    "swh_Latn": LangSpec("sw", "sw", None, None),
    "tur_Latn": LangSpec("tr", "tr", "tr", "tr"),
    "eng_Latn": LangSpec("en", "en", "en", "en"),
    "fra_Latn": LangSpec("fr", "fr", "fr", "fr"),
    "ukr_Cyrl": LangSpec("uk", "uk", "uk", "uk"),
    "rus_Cyrl": LangSpec("ru", "ru", "ru", "ru"),
    "hin_Deva": LangSpec("hi", "hi", None, "hi"),
    "arb_Arab": LangSpec("ar", "ar", "ar", "ar"),
    "kat_Geor": LangSpec("ka", "ka", None, None),
}


def spec(lang: str) -> LangSpec:
    if lang not in LANGUAGES:
        known = ", ".join(sorted(LANGUAGES))
        raise KeyError(f"language {lang!r} is not known to the corpus builder; known: {known}")
    return LANGUAGES[lang]


def script(lang: str) -> str:
    """The ISO 15924 part of an ``iso639-3_Script`` code."""
    return lang.split("_", 1)[1] if "_" in lang else "Zyyy"
