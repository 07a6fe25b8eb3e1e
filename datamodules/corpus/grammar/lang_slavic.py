"""Russian and Ukrainian realisers: gender, case after prepositions and numerals, free word order."""

from __future__ import annotations

from typing import ClassVar

from datamodules.corpus.grammar.meaning import Clause, Entity
from datamodules.corpus.grammar.realise import Realiser

_GENDER_SLOT = {"m": 0, "f": 1, "n": 2, "pl": 3}


class Slavic(Realiser):
    """Shared declension: numerals govern case (2-4 vs 5+), prepositions govern case, topic first."""

    conj = ", и "
    slots: ClassVar[dict[str, int]] = {"nom": 1, "gen": 2, "gen_pl": 3, "few": 2, "prep": 4, "instr": 5}
    """Index of each noun form in the lexicon row."""

    def few_adj_case(self, gender: str) -> tuple[str, bool]:
        """Case and plurality of an adjective after 2, 3 or 4."""
        return ("nom", True) if gender == "f" else ("gen", True)

    def adj(self, table: str, key: str, case: str, gender: str, plural: bool = False) -> str:
        stem, kind = self.lex[table][key]
        return str(stem + self.lex["adj_endings"][kind][case][3 if plural else _GENDER_SLOT[gender]])

    def np(self, e: Entity, case: str = "nom") -> str:
        """Noun phrase; subjects with numerals take the numeral's case, grounds are singular."""
        row = self.noun(e)
        gender = row[0]
        if e.count == 1 and case == "acc":  # inanimate accusative: feminine -а/-я become -у/-ю
            nom = row[self.slots["nom"]]
            form = nom[:-1] + {"а": "у", "я": "ю"}[nom[-1]] if nom[-1] in "ая" else nom
            acase, plural = case, gender == "pl"
        elif e.count == 1:
            acase, plural, form = case, gender == "pl", row[self.slots[case]]
        elif e.count <= 4:
            (acase, plural), form = self.few_adj_case(gender), row[self.slots["few"]]
        else:
            acase, plural, form = "gen", True, row[self.slots["gen_pl"]]
        words = [self.adj(t, k, acase, gender, plural) for t, k in (("sizes", e.size), ("colours", e.colour)) if k]
        if e.count > 1:
            words.insert(0, self.lex["numbers"][str(e.count)][1 if gender == "f" else 0])
        return " ".join([*words, form])

    def pp(self, relation: str, ground: Entity | None, ante: Entity | None) -> str:
        prep, case = self.lex["relations"][relation]
        if ground is None:
            assert ante is not None
            gender = self.noun(ante)[0] if ante.count == 1 else "pl"
            return f"{prep} {self.lex['pronouns'][case][gender]}"
        return f"{self.prep_form(prep, (np := self.np(ground, case)))} {np}"

    def prep_form(self, prep: str, following: str) -> str:
        """Euphonic variants of a preposition before ``following``."""
        return prep

    def clause(self, c: Clause, ante: Entity | None) -> str:
        subj, plural = self.np(c.subject), c.subject.count > 1
        if c.verb == "be":
            assert c.attribute is not None
            return f"{subj} {self.adj('colours', c.attribute, 'nom', self.noun(c.subject)[0])}"
        table = self.lex["postures"] if c.verb in self.lex["postures"] else self.lex["verbs"]
        verb = table[c.verb][1 if plural else 0]
        if c.object is not None:
            verb = f"{verb} {self.np(c.object, 'acc')}"
        if c.relation is None:
            return f"{subj} {verb}"
        place = self.pp(c.relation, c.ground, ante)
        if c.object is not None and c.ground is None:
            return f"{place} {subj} {verb}"  # "рядом с ним девочка держит мяч"
        if c.ground is None or (c.verb in self.lex["postures"] and not c.subject.definite):
            return f"{place} {verb} {subj}"  # "На столе стоит чашка": new information last
        return f"{subj} {verb} {place}"


class Russian(Slavic):
    """Russian (2-4 + genitive singular, 5+ genitive plural, с/со)."""

    lang = "rus_Cyrl"

    def prep_form(self, prep: str, following: str) -> str:
        w = following.lower()
        cluster = len(w) > 1 and w[0] in "сзшжщ" and w[1] not in "аеёиоуыэюяь"
        if prep.endswith(" с") and (cluster or w.startswith("мн")):
            return prep + "о"
        return prep


class Ukrainian(Slavic):
    """Ukrainian (2-4 + nominative plural, 5+ genitive plural, locative after на)."""

    lang = "ukr_Cyrl"
    conj = ", і "
    slots: ClassVar[dict[str, int]] = {"nom": 1, "gen": 2, "gen_pl": 3, "few": 4, "prep": 5, "instr": 6}

    def few_adj_case(self, gender: str) -> tuple[str, bool]:
        return "nom", True
