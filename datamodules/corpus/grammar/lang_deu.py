"""German realiser."""

from __future__ import annotations

from num2words import num2words

from datamodules.corpus.grammar.meaning import Clause, Entity
from datamodules.corpus.grammar.realise import Realiser

_DEF = {"nom": {"m": "der", "f": "die", "n": "das"}, "acc": {"m": "den", "f": "die", "n": "das"},
        "dat": {"m": "dem", "f": "der", "n": "dem"}}
_INDEF = {"nom": {"m": ("ein", "er"), "f": ("eine", "e"), "n": ("ein", "es")},
          "acc": {"m": ("einen", "en"), "f": ("eine", "e"), "n": ("ein", "es")}}
_WEAK = {"nom": {"m": "e", "f": "e", "n": "e"}, "acc": {"m": "en", "f": "e", "n": "e"},
         "dat": {"m": "en", "f": "en", "n": "en"}}


class German(Realiser):
    """German: gender, articles, weak/strong/mixed adjective endings, dative after locative prepositions, V2."""

    lang = "deu_Latn"
    conj = ", und "

    def _adjs(self, e: Entity, ending: str) -> list[str]:
        out = []
        for table, key in (("sizes", e.size), ("colours", e.colour)):
            if key:
                stem, invariable = self.lex[table][key]
                out.append(stem if invariable else stem + ending)
        return out

    def np(self, e: Entity, case: str = "nom") -> str:
        """Noun phrase in the nominative, accusative (objects) or dative (grounds)."""
        gender, sg, pl = self.noun(e)
        if e.count > 1:  # strong plural without article: "zwei kleine Hunde"
            return " ".join([str(num2words(e.count, lang="de")), *self._adjs(e, "e"), pl])
        if e.definite or case == "dat":  # weak endings after the definite article
            return " ".join([_DEF[case][gender], *self._adjs(e, _WEAK[case][gender]), sg])
        art, ending = _INDEF[case][gender]
        return " ".join([art, *self._adjs(e, ending), sg])

    def clause(self, c: Clause, ante: Entity | None) -> str:
        subj, plural = self.np(c.subject), c.subject.count > 1
        if c.verb == "be":
            return f"{subj} {'sind' if plural else 'ist'} {self.lex['colours'][c.attribute][0]}"
        table = self.lex["postures"][c.verb] if c.verb in self.lex["postures"] else self.verb(c.verb, c.subject)
        verb = table[1 if plural else 0]
        if c.object is not None:
            return self._transitive(c, subj, verb)
        if c.relation is None:
            return f"{subj} {verb}"
        if c.ground is None:  # "daneben schlafen zwei Hunde": adverb first, verb second
            return f"{self.lex['anaphors'][c.relation]} {verb} {subj}"
        place = f"{self.lex['relations'][c.relation]} {self.np(c.ground, 'dat')}"
        if c.verb in self.lex["postures"] and not c.subject.definite:  # "Auf dem Tisch steht eine Tasse"
            return f"{place} {verb} {subj}"
        return f"{subj} {verb} {place}"

    def _transitive(self, c: Clause, subj: str, verb: str) -> str:
        obj = self.np(c.object, "acc") if c.object else ""
        if c.relation is None:
            return f"{subj} {verb} {obj}"
        if c.ground is None:  # "daneben hält ein Mädchen einen roten Ball"
            return f"{self.lex['anaphors'][c.relation]} {verb} {subj} {obj}"
        return f"{subj} {verb} {obj} {self.lex['relations'][c.relation]} {self.np(c.ground, 'dat')}"
