"""Modern Standard Arabic realiser (unvocalised)."""

from __future__ import annotations

from datamodules.corpus.grammar.concepts import concepts
from datamodules.corpus.grammar.meaning import Clause, Entity
from datamodules.corpus.grammar.realise import Realiser


def _dual(word: str) -> str:
    """Nominative dual: -ة becomes -تان, otherwise -ان."""
    return word[:-1] + "تان" if word.endswith("ة") else word + "ان"


class Arabic(Realiser):
    """Arabic: dual, gender-reversed numerals 3-9 with genitive plurals, feminine singular agreement of non-human
    plurals, the article on noun and adjective, verb-first action clauses, fronted indefinite locations."""

    lang = "arb_Arab"
    conj = "، و"

    def _row(self, e: Entity) -> tuple[str, str, str, bool, dict[str, str]]:
        row = self.noun(e)
        return row[0], row[1], row[2], bool(row[3]), (row[4] if len(row) > 4 else {})

    def adj(self, table: str, key: str, e: Entity) -> str:
        gender, _, _, human, _ = self._row(e)
        forms = self.lex[table][key]
        if e.count == 2:
            form = forms[3 if gender == "f" else 2]
        elif e.count > 2:
            form = forms[4] if human and gender == "m" else forms[1]  # non-human plurals agree as feminine singular
        else:
            form = forms[1 if gender == "f" else 0]
        return str(("ال" + form) if e.definite and e.count == 1 else form)

    def _acc(self, word: str, e: Entity) -> str:
        """Accusative of an indefinite singular (alif of tanwin) or of a dual (-ين); else unchanged in script."""
        if e.count == 2:
            return word[:-2] + "ين" if word.endswith("ان") else word
        if e.count > 2 or e.definite or word.endswith(("ة", "اء", "ى")) or word in self.lex["diptotes"]:
            return word
        return word + "ا"

    def np(self, e: Entity, acc: bool = False) -> str:
        """Noun phrase: noun (or numeral + plural), then size and colour; objects take the accusative."""
        gender, sg, pl, _, extra = self._row(e)
        adjs = [self.adj(t, k, e) for t, k in (("sizes", e.size), ("colours", e.colour)) if k]
        if e.count == 1:
            head = extra.get("definite", "ال" + sg) if e.definite else sg
        elif e.count == 2:
            head = extra.get("dual", _dual(sg))
        else:
            head = f"{self.lex['numbers'][str(e.count)][1 if gender == 'f' else 0]} {pl}"
        if acc:
            head, adjs = self._acc(head, e), [self._acc(a, e) for a in adjs]
        return " ".join([head, *adjs])

    def verb_gender(self, e: Entity) -> int:
        """0 masculine / 1 feminine form of a verb before its subject."""
        gender, _, _, human, _ = self._row(e)
        return 1 if gender == "f" or (e.count > 2 and not human) else 0

    def pp(self, c: Clause, ante: Entity | None) -> str:
        assert c.relation is not None
        rel = self.lex["relations"][c.relation]
        if c.ground is None:
            assert ante is not None
            return rel + ("ها" if self._row(ante)[0] == "f" else "ه")
        return f"{rel} {self.np(c.ground)}"

    def join(self, left: str, right: str) -> str:
        return left + self.conj + right

    def clause(self, c: Clause, ante: Entity | None) -> str:
        subj = self.np(c.subject)
        if c.verb == "be":
            assert c.attribute is not None
            pred = Entity(c.subject.noun, c.subject.count, c.attribute)
            return f"{subj} {self.adj('colours', c.attribute, pred)}"
        person = concepts().nouns[c.subject.noun].type == "person"
        animal = concepts().nouns[c.subject.noun].type == "animal"
        verbal = c.verb in self.lex["verbs"] or (c.verb == "sit" and (person or animal)) or (
            c.verb == "stand" and person)
        place = self.pp(c, ante) if c.relation else ""
        if verbal:
            table = self.lex["verbs"] if c.verb in self.lex["verbs"] else self.lex["postures"]
            verb = table[c.verb][self.verb_gender(c.subject)]
            if c.object is not None:
                subj = f"{subj} {self.np(c.object, acc=True)}"
            if c.ground is None and c.relation:
                return f"{place} {verb} {subj}"
            return " ".join(filter(None, [verb, subj, place]))
        if c.subject.definite:
            return f"{subj} {place}"  # "الكوب الأحمر على الطاولة"
        return f"{place} {subj}"  # an indefinite subject follows its place: "على الطاولة كوب أحمر"
