"""English realiser."""

from __future__ import annotations

from num2words import num2words

from datamodules.corpus.grammar.meaning import Clause, Entity
from datamodules.corpus.grammar.realise import Realiser


class English(Realiser):
    """English: articles, a/an, plural nouns, progressive actions, locative inversion after "next to it"."""

    lang = "eng_Latn"

    def np(self, e: Entity) -> str:
        """Noun phrase: determiner, size, colour, noun."""
        sg, pl = self.noun(e)
        words = [self.lex["sizes"][e.size]] if e.size else []
        if e.colour:
            words.append(self.lex["colours"][e.colour])
        words.append(sg if e.count == 1 else pl)
        if e.definite:
            det = "the"
        elif e.count == 1:
            det = "an" if words[0][0] in "aeiou" else "a"
        else:
            det = str(num2words(e.count, lang="en"))
        return " ".join([det, *words])

    def clause(self, c: Clause, ante: Entity | None) -> str:
        subj, plural = self.np(c.subject), c.subject.count > 1
        if c.verb == "be":
            return f"{subj} {'are' if plural else 'is'} {self.lex['colours'][c.attribute]}"
        rel = ""
        if c.relation:
            rel = self.lex["relations"][c.relation] + " " + ("it" if c.ground is None else self.np(c.ground))
        if c.verb in self.lex["postures"]:
            verb = self.lex["postures"][c.verb][1 if plural else 0]
            return f"{rel} {verb} {subj}" if c.anaphoric else " ".join(filter(None, [subj, verb, rel]))
        verb = f"{'are' if plural else 'is'} {self.lex['verbs'][c.verb][1]}"
        if c.object is not None:
            verb += " " + self.np(c.object)
        return f"{rel} {subj} {verb}" if c.anaphoric else " ".join(filter(None, [subj, verb, rel]))
