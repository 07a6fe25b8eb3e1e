"""Turkish realiser."""

from __future__ import annotations

from num2words import num2words

from datamodules.corpus.grammar.concepts import concepts
from datamodules.corpus.grammar.meaning import Clause, Entity
from datamodules.corpus.grammar.realise import Realiser


class Turkish(Realiser):
    """Turkish: SOV, "bir" after adjectives, singular nouns after numerals, genitive + possessive postpositions."""

    lang = "tur_Latn"
    conj = " ve "

    def np(self, e: Entity, genitive: bool = False, accusative: bool = False) -> str:
        """Noun phrase; grounds take the genitive before a postposition ("masanın üstünde"), definite objects the
        accusative ("kırmızı topu")."""
        nom, gen = self.noun(e)
        if accusative and e.definite:
            nom = self.lex["accusative"][e.noun]
        words = [self.lex[t][k] for t, k in (("sizes", e.size), ("colours", e.colour)) if k]
        if e.count > 1:
            words.insert(0, str(num2words(e.count, lang="tr")))
        elif not e.definite:
            words.append("bir")  # "kırmızı bir fincan"
        return " ".join([*words, gen if genitive else nom])

    def capitalise(self, text: str) -> str:
        first = {"i": "İ", "ı": "I"}.get(text[:1], text[:1].upper())
        return first + text[1:]

    def clause(self, c: Clause, ante: Entity | None) -> str:
        subj = self.np(c.subject)
        if c.verb == "be":
            return f"{subj} {self.lex['colours'][c.attribute]}"
        posture = c.verb in self.lex["postures"]
        if posture:
            table = self.lex["postures"][c.verb]
            verb = table.get(concepts().nouns[c.subject.noun].type, table["default"])
        else:
            verb = self.lex["verbs"][c.verb]
        if c.object is not None:
            verb = f"{self.np(c.object, accusative=True)} {verb}"
        if c.relation is None:
            return f"{subj} {verb}"
        rel = self.lex["relations"][c.relation]
        place = f"onun {rel}" if c.ground is None else f"{self.np(c.ground, genitive=True)} {rel}"
        if c.ground is None or (posture and not c.subject.definite):
            return f"{place} {subj} {verb}"  # "Masanın üstünde kırmızı bir fincan duruyor"
        return f"{subj} {place} {verb}"
