"""Tune descriptions: one meaning (which attributes are said) realised in every description language.

The shared scene grammar (datamodules/corpus/grammar) builds clauses about counted, coloured objects placed in
space; a tune description is a genre noun phrase with modifiers (key, meter, tempo, instrument, contour, register,
dynamics) and a few sentences about "the piece", which fits none of its clause types. So, as the scene captions
extend the grammar's lexicons, this module keeps its own per-language music lexicon (music_lexicon*.py) and a small
realiser in the same spirit: the meaning is drawn once per tune, and each language realises it with its own word
order, agreement (the tempo adjective and some participles agree with the genre noun) and phrasing, choosing
per description which attributes become modifiers and which become sentences.
"""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass
from typing import Any

from datamodules.corpus.music_lexicon import DEU, ENG, FRA, SPA, Lex
from datamodules.corpus.music_lexicon_world import ARB, HIN, RUS

LEXICONS: dict[str, Lex] = {"eng_Latn": ENG, "deu_Latn": DEU, "fra_Latn": FRA, "spa_Latn": SPA, "rus_Cyrl": RUS,
                            "hin_Deva": HIN, "arb_Arab": ARB}
"""Description language -> its music lexicon."""
LANGS = tuple(LEXICONS)
"""Description languages."""
FACETS = ("key", "meter", "tempo", "instrument", "contour", "register", "dynamics")
"""Attributes a description may state besides the genre, in canonical order."""


@dataclass(frozen=True)
class TuneMeaning:
    """What one description says about a tune (the same in every language)."""

    facets: tuple[str, ...]
    """Attributes stated, besides the genre (a subset of FACETS)."""
    tempo_as: str
    """"word" (slow / moderate / fast) or "bpm" (the number), when ``tempo`` is stated."""

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form (the manifest's ``meaning`` field)."""
        return asdict(self)


def sample_meaning(rng: random.Random, min_facets: int = 3, max_facets: int = 6) -> TuneMeaning:
    """Which attributes a description states: the key nearly always, then a random subset of the rest."""
    rest = [f for f in FACETS if f != "key"]
    k = rng.randint(min_facets, max_facets)
    chosen = set(rng.sample(rest, k - 1))
    if rng.random() < 0.9:
        chosen.add("key")
    else:
        chosen.add(rng.choice([f for f in rest if f not in chosen]))
    return TuneMeaning(tuple(f for f in FACETS if f in chosen), rng.choice(("word", "bpm")))


def _pick(value: Any, gender: str, rng: random.Random) -> str:
    """A phrase from a lexicon value: a list of alternatives, a ``{gender: form}`` dict, or a string."""
    if isinstance(value, list):
        return _pick(rng.choice(value), gender, rng)
    if isinstance(value, dict):
        return str(value.get(gender, value.get("m", next(iter(value.values())))))
    return str(value)


def _count_noun(forms: tuple[str, str, str], n: int) -> str:
    """Slavic counted noun: one (1, 21, ...), few (2-4, 22-24, ...) or many."""
    if n % 10 == 1 and n % 100 != 11:
        return forms[0]
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return forms[1]
    return forms[2]


def _instrument(lex: Lex, name: str, clause: bool, gender: str, rng: random.Random) -> str:
    value = lex["instr"][name]
    if isinstance(value, tuple):
        value = value[1 if clause else 0]
    return _pick(value, gender, rng)


def _phrase(lex: Lex, facet: str, a: dict[str, Any], clause: bool, gender: str, rng: random.Random) -> str:
    """One attribute as a modifier of the noun phrase, or as a sentence."""
    kind = "cl" if clause else "mod"
    # a real tune's header gives only some attributes (music_real): fill only what is there; a generated tune has
    # them all, so its wording (and the rng draws) are unchanged
    tonic = lex["tonic"][a["key"]] if "key" in a else ""
    fill = {"t": tonic, "tl": tonic.lower(), "m": a.get("meter", ""), "n": a.get("tempo", ""),
            "beats": _count_noun(lex["beats"], int(a["tempo"])) if "beats" in lex and "tempo" in a else "",
            "i": _instrument(lex, a["instrument"], clause, gender, rng) if "instrument" in a else ""}
    if facet == "key":
        template = _pick(lex[f"key_{kind}"][a["mode"]], gender, rng)
    elif facet == "meter":
        template = _pick(lex[f"meter_{kind}"], gender, rng)
    elif facet == "tempo":
        template = _pick(lex[f"bpm_{kind}"], gender, rng)
    elif facet == "instrument":
        template = _pick(lex[f"instr_{kind}"], gender, rng)
    else:
        table = {"contour": "contour", "register": "register", "dynamics": "dyn"}[facet]
        template = _pick(lex[f"{table}_{kind}"][a[facet]], gender, rng)
    return template.format(**fill)


def _tidy(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+([,.،।])", r"\1", text)
    return text[:1].upper() + text[1:]


def _english_article(text: str) -> str:
    return re.sub(r"\{a\} (\S)", lambda m: ("an " if m.group(1).lower() in "aeiou" else "a ") + m.group(1), text)


def realise(meaning: TuneMeaning, attributes: dict[str, Any], lang: str, rng: random.Random) -> str:
    """The description of a tune with ``attributes`` in ``lang`` that states what ``meaning`` says."""
    if lang not in LEXICONS:
        raise KeyError(f"no music descriptions for {lang!r}; known: {', '.join(LANGS)}")
    lex = LEXICONS[lang]
    gender, noun = lex["genre"][attributes["genre"]]
    word_tempo = "tempo" in meaning.facets and meaning.tempo_as == "word"
    adj = _pick(lex["tempo"][attributes["tempo_word"]], gender, rng) if word_tempo else ""
    art = lex.get("art", {}).get(gender, "")
    np = _pick(lex["np"], gender, rng).format(art=art, a="{a}", adj=adj, noun=noun)
    np = _english_article(re.sub(r"\s+", " ", np))
    mods: list[str] = []
    clauses: list[str] = []
    for facet in meaning.facets:
        if facet == "tempo" and word_tempo:
            continue
        as_clause = rng.random() < (0.2 if facet == "key" else 0.4)
        (clauses if as_clause else mods).append(_phrase(lex, facet, attributes, as_clause, gender, rng))
    rng.shuffle(mods)
    sep = lex.get("sep", ", ")
    # Hindi puts the modifiers before the noun phrase, the others after it
    mod_text = "" if not mods else (sep.join(mods) + " " if lex.get("mods_first") else " " + sep.join(mods))
    intro = _pick(lex["intro"], gender, rng).format(np=np, mods=mod_text)
    rng.shuffle(clauses)
    return " ".join(_tidy(s) for s in [intro, *clauses])


def describe(attributes: dict[str, Any], langs: list[str] | tuple[str, ...], seed: int | str
             ) -> tuple[TuneMeaning, dict[str, str]]:
    """One meaning for the tune and its description in every language of ``langs``."""
    rng = random.Random(f"meaning:{seed}")
    meaning = sample_meaning(rng)
    return meaning, {lang: realise(meaning, attributes, lang, random.Random(f"{seed}:{lang}")) for lang in langs}
