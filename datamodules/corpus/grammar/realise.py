"""Realise a meaning as a sentence in one language: a registry of per-language realisers."""

from __future__ import annotations

import functools
import importlib
import json
from importlib import resources
from typing import Any

from datamodules.corpus.grammar.concepts import concepts
from datamodules.corpus.grammar.meaning import Clause, Entity, Meaning

REALISERS: dict[str, str] = {
    "eng_Latn": "datamodules.corpus.grammar.lang_eng.English",
    "deu_Latn": "datamodules.corpus.grammar.lang_deu.German",
    "spa_Latn": "datamodules.corpus.grammar.lang_romance.Spanish",
    "fra_Latn": "datamodules.corpus.grammar.lang_romance.French",
    "ita_Latn": "datamodules.corpus.grammar.lang_romance.Italian",
    "rus_Cyrl": "datamodules.corpus.grammar.lang_slavic.Russian",
    "ukr_Cyrl": "datamodules.corpus.grammar.lang_slavic.Ukrainian",
    "hin_Deva": "datamodules.corpus.grammar.lang_hin.Hindi",
    "arb_Arab": "datamodules.corpus.grammar.lang_arb.Arabic",
    "tur_Latn": "datamodules.corpus.grammar.lang_tur.Turkish",
    "swh_Latn": "datamodules.corpus.grammar.lang_swh.Swahili",
}
"""Language code -> dotted path of its Realiser class."""


def load_lexicon(lang: str) -> dict[str, Any]:
    """The packaged lexicon of ``lang`` (lexicon/<lang>.json)."""
    res = resources.files("datamodules.corpus.grammar").joinpath("lexicon", f"{lang}.json")
    if not res.is_file():
        raise FileNotFoundError(f"lexicon/{lang}.json: no lexicon for {lang}")
    try:
        return dict(json.loads(res.read_text(encoding="utf-8")))
    except json.JSONDecodeError as e:
        raise ValueError(f"lexicon/{lang}.json: invalid JSON ({e})") from e


class Realiser:
    """Turns meanings into sentences of one language; subclasses realise single clauses."""

    lang = ""
    conj = ", and "
    """Joins clauses."""
    stop = "."
    """Sentence-final punctuation."""

    def __init__(self, lex: dict[str, Any] | None = None):
        self.lex = lex if lex is not None else load_lexicon(self.lang)
        self.check()

    def check(self) -> None:
        """Fail early, naming the file, when the lexicon lacks a concept the sampler can draw."""
        inv = concepts()
        verbs = [*inv.verbs, *inv.transitive]
        wanted = {"nouns": list(inv.nouns), "colours": list(inv.colours), "sizes": list(inv.sizes), "verbs": verbs}
        missing = {table: sorted(set(keys) - set(self.lex.get(table, {}))) for table, keys in wanted.items()}
        missing = {k: v for k, v in missing.items() if v}
        if missing:
            raise ValueError(f"lexicon/{self.lang}.json: missing entries {missing}")

    def realise(self, meaning: Meaning) -> str:
        """The sentence for ``meaning``."""
        parts = [self.clause(c, ante) for c, ante in zip(meaning.clauses, meaning.antecedents())]
        text = parts[0]
        for p in parts[1:]:
            text = self.join(text, p)
        return self.capitalise(text) + self.stop

    def join(self, left: str, right: str) -> str:
        """``left`` and ``right`` as coordinated main clauses."""
        return left + self.conj + right

    def capitalise(self, text: str) -> str:
        """Upper-case the first letter."""
        return text[:1].upper() + text[1:]

    def clause(self, c: Clause, ante: Entity | None) -> str:
        """One clause; ``ante`` is the entity an anaphoric relation points to."""
        raise NotImplementedError

    def noun(self, e: Entity) -> Any:
        """Lexicon entry of the entity's noun, with a clear error when missing."""
        try:
            return self.lex["nouns"][e.noun]
        except KeyError as err:
            raise KeyError(f"lexicon/{self.lang}.json: no noun {e.noun!r}") from err

    def verb(self, verb: str, subject: Entity) -> Any:
        """Lexicon entry of an action verb; a dict entry chooses by the subject's type ("animal") or "default"."""
        entry = self.lex["verbs"][verb]
        if isinstance(entry, dict):
            return entry.get(concepts().nouns[subject.noun].type, entry["default"])
        return entry


@functools.cache
def realiser(lang: str) -> Realiser:
    """The realiser of ``lang`` (cached)."""
    if lang not in REALISERS:
        raise KeyError(f"no grammar realiser for {lang!r}; known: {', '.join(sorted(REALISERS))}")
    module, _, name = REALISERS[lang].rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    inst: Realiser = cls()
    return inst


def realise(meaning: Meaning, lang: str) -> str:
    """``meaning`` as a sentence in ``lang``."""
    return realiser(lang).realise(meaning)
