"""Open-vocabulary text per language: lexicon phrases, CLDR names, spelled numbers, sentence lists."""

from __future__ import annotations

import functools
import logging
import random
import re
import unicodedata
from importlib import resources
from pathlib import Path

from datamodules.corpus.languages import script, spec
from text.normalize import normalize_transcript
from text.parallel import read_parallel
from text.parallel import user_sentences as user_sentences  # re-exported: corpus builders read user text

log = logging.getLogger(__name__)

_SCRIPT_NAMES = {"Latn": "LATIN", "Cyrl": "CYRILLIC", "Deva": "DEVANAGARI", "Arab": "ARABIC",
                 "Geor": "GEORGIAN", "Grek": "GREEK", "Hans": "CJK", "Armn": "ARMENIAN", "Hebr": "HEBREW"}
_BAD = re.compile(r"[\d()\[\]{}<>/\\|_@#$%^&*=+~\"]")


def in_script(text: str, lang: str) -> bool:
    """True when every letter of ``text`` belongs to the language's script."""
    want = _SCRIPT_NAMES.get(script(lang))
    if want is None or _BAD.search(text):
        return False
    for c in text:
        if unicodedata.category(c)[0] == "L" and not unicodedata.name(c, "").startswith(want):
            return False
    return any(unicodedata.category(c)[0] == "L" for c in text)


@functools.cache
def sentence_list(lang: str) -> tuple[str, ...]:
    """The project's own hand-written sentences for ``lang`` (may be empty)."""
    res = resources.files("datamodules.corpus").joinpath("sentences", f"{lang}.txt")
    if not res.is_file():
        return ()
    lines = res.read_text(encoding="utf-8").splitlines()
    return tuple(dict.fromkeys(s.strip() for s in lines if s.strip() and not s.startswith("#")))


@functools.cache
def lexicon(lang: str, size: int = 30_000) -> tuple[str, ...]:
    """Common words (wordfreq) in the language's own script, most frequent first."""
    code = spec(lang).wordfreq
    if code is None:
        return ()
    import wordfreq

    return tuple(w for w in wordfreq.top_n_list(code, size) if len(w) > 1 and in_script(w, lang))


@functools.cache
def cldr_names(lang: str) -> tuple[str, ...]:
    """Names of territories, languages, scripts, currencies, months, days and units (CLDR)."""
    from babel import Locale

    loc = Locale.parse(spec(lang).cldr)
    names: list[str] = []
    for table in (loc.territories, loc.languages, loc.scripts):
        names += list(table.values())
    names += list(loc.currencies.values())
    for ctx in ("format", "stand-alone"):
        names += list(loc.months[ctx]["wide"].values()) + list(loc.days[ctx]["wide"].values())
    return tuple(dict.fromkeys(n for n in names if in_script(n, lang)))


def _spell(n: int, lang: str, to: str = "cardinal") -> str | None:
    code = spec(lang).num2words
    if code is None:
        return None
    from num2words import num2words

    try:
        return str(num2words(n, lang=code, to=to))
    except (NotImplementedError, OverflowError, KeyError, ValueError, AttributeError, TypeError):
        return None


def _zipf_pick(words: tuple[str, ...], rng: random.Random) -> str:
    # Log-uniform rank: frequent words often, the long tail still reached.
    return words[min(int(len(words) ** rng.random()) - 1, len(words) - 1)]


def lexicon_phrase(lang: str, rng: random.Random) -> str | None:
    words = lexicon(lang)
    if not words:
        return None
    return " ".join(_zipf_pick(words, rng) for _ in range(rng.randint(3, 10)))


def cldr_phrase(lang: str, rng: random.Random) -> str | None:
    from babel.lists import format_list

    names = cldr_names(lang)
    if not names:
        return None
    picked = [rng.choice(names) for _ in range(rng.randint(1, 4))]
    return format_list(picked, locale=spec(lang).cldr)


def number_phrase(lang: str, rng: random.Random) -> str | None:
    kind = rng.random()
    if kind < 0.5:
        n = rng.choice([rng.randint(0, 100), rng.randint(100, 10_000), rng.randint(10_000, 10_000_000)])
        return _spell(n, lang)
    if kind < 0.8:
        return _spell(rng.randint(1, 100), lang, "ordinal")
    return _spell(rng.randint(1000, 2100), lang, "year") or _spell(rng.randint(1000, 2100), lang)


def mixed_phrase(lang: str, rng: random.Random) -> str | None:
    """A number, a CLDR name and common words together, so every source meets the others."""
    parts = [number_phrase(lang, rng), cldr_phrase(lang, rng), lexicon_phrase(lang, rng)]
    kept = [p for p in parts if p]
    rng.shuffle(kept)
    return " ".join(kept) if kept else None


GENERATORS = {
    "lexicon": lexicon_phrase,
    "cldr": cldr_phrase,
    "numbers": number_phrase,
    "mixed": mixed_phrase,
}
"""Generated sources; ``sentences`` (hand-written lists), ``real`` (text_real train split) and ``user`` files are lists
drawn separately (datamodules/corpus/speech.py)."""


def usable(text: str, lang: str, max_words: int, min_words: int = 1) -> bool:
    """The alphabet and length limits of corpus sentences (digits and symbols are not spelled out: dropped)."""
    n = len(text.split())
    return min_words <= n <= max_words and bool(normalize_transcript(text, lang)) and in_script(text, lang)


@functools.cache
def real_sentences(path: str, langs: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Sentences per language from a text_real ``parallel/<split>.jsonl`` (``{}`` with a log line when it is missing).

    Built by ``python scripts/make_corpus.py corpus=text_real``; a row holds ``texts`` by language.
    """
    file = Path(path)
    if not file.is_file():
        log.info("real text %s not found: skipped (build it with python scripts/make_corpus.py corpus=text_real)",
                 file)
        return {}
    out: dict[str, dict[str, None]] = {lang: {} for lang in langs}
    for texts in read_parallel(file):
        for lang in langs:
            if lang in texts:
                out[lang][texts[lang].strip()] = None
    return {lang: tuple(s) for lang, s in out.items()}
