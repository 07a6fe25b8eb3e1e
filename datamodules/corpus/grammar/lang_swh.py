"""Swahili realiser."""

from __future__ import annotations

from typing import Any

from datamodules.corpus.grammar.meaning import Clause, Entity
from datamodules.corpus.grammar.realise import Realiser


def _nasal(stem: str) -> str:
    """Class 9/10 N- prefix: ndogo, mbili, kubwa."""
    if stem == "wili":
        return "mbili"
    if stem[0] in "dgjz":
        return "n" + stem
    if stem[0] in "bv":
        return "m" + stem
    return stem


class Swahili(Realiser):
    """Swahili: noun classes with adjective, numeral, subject and locative-copula concords (animals take 1/2)."""

    lang = "swh_Latn"
    conj = ", na "

    def _class(self, e: Entity) -> tuple[str, str, dict[str, Any], str]:
        """Noun form, its concord class, the concords and any tail (``chombo ... cha maua``)."""
        row = self.noun(e)
        plural = e.count > 1
        form, cls = (row[2], row[3]) if plural else (row[0], row[1])
        tail = row[4][1 if plural else 0] if len(row) > 4 else ""
        return form, cls, self.lex["concords"][cls], tail

    def adj(self, table: str, key: str, cls: str) -> str:
        stem, kind = self.lex[table][key]
        conc = self.lex["concords"][cls]
        if kind == "assoc":
            return f"{conc['assoc']} {stem}"
        if kind == "vowel":
            return str(conc["adj_v"] + stem)
        return _nasal(stem) if conc["adj"] == "N" else str(conc["adj"] + stem)

    def np(self, e: Entity) -> str:
        """Noun, numeral, adjectives; no articles."""
        form, cls, conc, tail = self._class(e)
        words = [form]
        if e.count > 1:  # "vikombe vitatu vyekundu": the numeral right after the noun
            stem = self.lex["numbers"][str(e.count)]
            if str(e.count) in self.lex["agreeing_numbers"]:
                stem = _nasal(stem) if conc["num"] == "N" else conc["num"] + stem
            words.append(stem)
        words += [self.adj(t, k, cls) for t, k in (("sizes", e.size), ("colours", e.colour)) if k]
        return " ".join(filter(None, [*words, tail]))

    def clause(self, c: Clause, ante: Entity | None) -> str:
        subj = self.np(c.subject)
        _, cls, conc, _ = self._class(c.subject)
        if c.verb == "be":
            assert c.attribute is not None
            return f"{subj} ni {self.adj('colours', c.attribute, cls)}"
        posture = c.verb in ("stand", "lie", "sit")
        verb = conc["ko"] if posture else f"{conc['subj']}na{self.lex['verbs'][c.verb]}"
        if c.object is not None:
            verb = f"{verb} {self.np(c.object)}"
        if c.relation is None:
            return f"{subj} {verb}"
        if c.ground is None:
            place = self.lex["anaphors"][c.relation]
        else:
            place = f"{self.lex['relations'][c.relation]} {self.np(c.ground)}"
        if posture and not c.subject.definite:
            return f"{place} kuna {subj}"  # "Juu ya meza kuna kikombe chekundu"
        if c.ground is None and not posture:
            return f"{place} {subj} {verb}"
        return f"{subj} {verb} {place}"
