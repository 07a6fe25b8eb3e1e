"""Hindi realiser."""

from __future__ import annotations

from datamodules.corpus.grammar.concepts import concepts
from datamodules.corpus.grammar.meaning import Clause, Entity
from datamodules.corpus.grammar.realise import Realiser


def _inflect(stem: str, gender: str, plural_or_oblique: bool) -> str:
    """-ा adjectives and participles: -ा (m sg direct), -े (m pl / oblique), -ी (f)."""
    base = stem[:-1]
    if gender == "f":
        return base + "ी"
    return base + ("े" if plural_or_oblique else "ा")


class Hindi(Realiser):
    """Hindi: SOV, postpositions with oblique nouns, adjective and participle agreement in gender and number."""

    lang = "hin_Deva"
    conj = ", और "
    stop = "।"

    def adj(self, table: str, key: str, gender: str, oblique: bool) -> str:
        word, inflects = self.lex[table][key]
        return _inflect(word, gender, oblique) if inflects else str(word)

    def np(self, e: Entity, oblique: bool = False) -> str:
        """Noun phrase in the direct case, or the oblique case before a postposition."""
        gender, sg, pl, obl = self.noun(e)
        plural = e.count > 1
        words = [self.adj(t, k, gender, plural or oblique) for t, k in (("sizes", e.size), ("colours", e.colour)) if k]
        if plural or not e.definite:
            words.insert(0, self.lex["numbers"][str(e.count)])
        return " ".join([*words, pl if plural else (obl if oblique else sg)])

    def aux(self, plural: bool) -> str:
        return "हैं" if plural else "है"

    def clause(self, c: Clause, ante: Entity | None) -> str:
        subj, plural = self.np(c.subject), c.subject.count > 1
        gender = self.noun(c.subject)[0]
        if c.verb == "be":
            assert c.attribute is not None
            return f"{subj} {self.adj('colours', c.attribute, gender, plural)} {self.aux(plural)}"
        if c.verb in self.lex["postures"]:
            table = self.lex["postures"][c.verb]
            stem = table.get(concepts().nouns[c.subject.noun].type, table["default"])
            verb = f"{_inflect(stem, gender, plural)} {self.aux(plural)}"
        elif c.verb in self.lex["stative"]:  # "... एक लाल गेंद पकड़े हुए है"
            verb = f"{self.lex['verbs'][c.verb]} {self.aux(plural)}"
        else:
            verb = f"{self.lex['verbs'][c.verb]} {_inflect('रहा', gender, plural)} {self.aux(plural)}"
        if c.object is not None:
            verb = f"{self.np(c.object)} {verb}"
        if c.relation is None:
            return f"{subj} {verb}"
        if c.ground is None:
            return f"{self.lex['anaphors'][c.relation]} {subj} {verb}"
        place = f"{self.np(c.ground, oblique=True)} {self.lex['relations'][c.relation]}"
        if c.verb in self.lex["postures"] and not c.subject.definite:
            return f"{place} {subj} {verb}"  # "मेज़ पर एक लाल कप रखा है"
        return f"{subj} {place} {verb}"
