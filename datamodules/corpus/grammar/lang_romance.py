"""Spanish, French and Italian realisers: gender and number agreement, articles, contractions, elision."""

from __future__ import annotations

from typing import ClassVar

from num2words import num2words

from datamodules.corpus.grammar.meaning import Clause, Entity
from datamodules.corpus.grammar.realise import Realiser


def _cat(article: str, rest: str) -> str:
    """Article and what follows; an elided article ("l'") takes no space."""
    return article + rest if article.endswith("'") else f"{article} {rest}"


class Romance(Realiser):
    """Shared clause patterns; subclasses give articles, word order and existential/copula forms."""

    num2words_lang = ""
    size_first = False
    """Size adjectives precede the noun (French, Italian)."""
    be = ("es", "son")
    """Copula of a property."""
    located = ("está", "están")
    """Copula of a place."""
    exists_definite = False
    """"There is" also introduces a known subject after "next to it" (Italian "accanto c'è il gatto")."""

    def adj(self, table: str, key: str, gender: str, plural: bool) -> str:
        """The agreeing form of a colour or size."""
        return str(self.lex[table][key][(2 if plural else 0) + (1 if gender == "f" else 0)])

    def article(self, gender: str, definite: bool, following: str) -> str:
        """Singular article before ``following`` (the next word)."""
        raise NotImplementedError

    def np(self, e: Entity, definite: bool | None = None) -> str:
        """Noun phrase: article or number, adjectives in their place, agreeing in gender and number."""
        gender, sg, pl = self.noun(e)
        plural = e.count > 1
        words = [pl if plural else sg]
        if e.colour:
            words.append(self.adj("colours", e.colour, gender, plural))
        if e.size:
            size = self.adj("sizes", e.size, gender, plural)
            words = [size, *words] if self.size_first else [*words, size]
        body = " ".join(words)
        if plural:
            return f"{num2words(e.count, lang=self.num2words_lang)} {body}"
        return _cat(self.article(gender, e.definite if definite is None else definite, words[0]), body)

    def pp(self, relation: str, ground: Entity) -> str:
        """Prepositional phrase with the ground, contracting preposition and article."""
        return f"{self.lex['relations'][relation]} {self.np(ground, definite=True)}"

    def exists(self, plural: bool) -> str:
        """"There is/are"."""
        raise NotImplementedError

    def fronted(self, adverb: str, verb: str, subj: str) -> str:
        """Anaphoric adverb first ("a su lado duermen dos perros")."""
        return f"{adverb} {verb} {subj}"

    def fronted_svo(self, adverb: str, subj: str, verb: str) -> str:
        """Anaphoric adverb, then subject, verb and object."""
        return f"{adverb} {subj} {verb}"

    def clause(self, c: Clause, ante: Entity | None) -> str:
        subj, plural = self.np(c.subject), c.subject.count > 1
        gender = self.noun(c.subject)[0]
        if c.verb == "be":
            assert c.attribute is not None
            return f"{subj} {self.be[plural]} {self.adj('colours', c.attribute, gender, plural)}"
        posture = c.verb in ("stand", "lie", "sit")
        verb = self.located[plural] if posture else self.verb(c.verb, c.subject)[plural]
        if c.object is not None:
            verb = f"{verb} {self.np(c.object)}"
        if c.relation is None:
            return f"{subj} {verb}"
        if c.ground is None:
            adverb = self.lex["anaphors"][c.relation]
            if c.object is not None:  # subject before a verb with an object: "a su lado una chica sostiene ..."
                return self.fronted_svo(adverb, subj, verb)
            if posture and (not c.subject.definite or self.exists_definite):
                return f"{adverb} {self.exists(plural)} {subj}"
            return self.fronted(adverb, verb, subj)
        place = self.pp(c.relation, c.ground)
        if posture and not c.subject.definite:
            return f"{place} {self.exists(plural)} {subj}"
        return f"{subj} {verb} {place}"


class Spanish(Romance):
    """Spanish (el/la, del/al, hay, y/e)."""

    lang = "spa_Latn"
    num2words_lang = "es"
    conj = ", y "

    def article(self, gender: str, definite: bool, following: str) -> str:
        return ("la" if gender == "f" else "el") if definite else ("una" if gender == "f" else "un")

    def pp(self, relation: str, ground: Entity) -> str:
        text = super().pp(relation, ground)
        return text.replace(" de el ", " del ").replace(" a el ", " al ")

    def exists(self, plural: bool) -> str:
        return "hay"

    def join(self, left: str, right: str) -> str:
        hi = right.lower().startswith(("i", "hi")) and not right.lower().startswith("hie")
        return left + (", e " if hi else self.conj) + right


class French(Romance):
    """French (le/la/l', du, il y a, prenominal petit/grand)."""

    lang = "fra_Latn"
    num2words_lang = "fr"
    conj = ", et "
    size_first = True
    be = ("est", "sont")
    located = ("est", "sont")

    def _vowel(self, word: str) -> bool:
        return word[0].lower() in "aeiouyàâéèêîôû" or word in self.lex["h_muet"]

    def article(self, gender: str, definite: bool, following: str) -> str:
        if definite:
            return "l'" if self._vowel(following) else ("la" if gender == "f" else "le")
        return "une" if gender == "f" else "un"

    def pp(self, relation: str, ground: Entity) -> str:
        return super().pp(relation, ground).replace(" de le ", " du ")

    def exists(self, plural: bool) -> str:
        return "il y a"

    def fronted(self, adverb: str, verb: str, subj: str) -> str:
        return f"{subj} {verb} {adverb}" if verb in self.located else f"{adverb}, {subj} {verb}"

    def fronted_svo(self, adverb: str, subj: str, verb: str) -> str:
        return f"{adverb}, {subj} {verb}"


class Italian(Romance):
    """Italian (il/lo/l'/la, un/uno/una/un', sul/al/del, c'è/ci sono, prenominal piccolo/grande)."""

    lang = "ita_Latn"
    num2words_lang = "it"
    conj = ", e "
    size_first = True
    be = ("è", "sono")
    located = ("è", "sono")
    exists_definite = True
    _JOINED: ClassVar[dict[str, str]] = {"il": "l", "lo": "llo", "l'": "ll'", "la": "lla"}
    _PREP: ClassVar[dict[str, str]] = {"su": "su", "a": "a", "di": "de"}

    @staticmethod
    def _kind(word: str) -> str:
        w = word.lower()
        if w[0] in "aeiouàèéìòù":
            return "vowel"
        if w[0] in "zxy" or w.startswith(("gn", "ps")) or (w[0] == "s" and w[1] not in "aeiou"):
            return "s+"
        return "plain"

    def article(self, gender: str, definite: bool, following: str) -> str:
        kind = self._kind(following)
        if gender == "f":
            if definite:
                return "l'" if kind == "vowel" else "la"
            return "un'" if kind == "vowel" else "una"
        if definite:
            return {"vowel": "l'", "s+": "lo", "plain": "il"}[kind]
        return "uno" if kind == "s+" else "un"

    def pp(self, relation: str, ground: Entity) -> str:
        rel = self.lex["relations"][relation]
        head, _, prep = rel.rpartition(" ")
        noun = self.np(ground, definite=True)
        if prep not in self._PREP:
            return f"{rel} {noun}"
        article = noun[:2] if noun.startswith("l'") else noun.split(" ", 1)[0]
        rest = noun[len(article):].lstrip()
        joined = self._PREP[prep] + self._JOINED[article]
        return " ".join(filter(None, [head, _cat(joined, rest)]))

    def exists(self, plural: bool) -> str:
        return "ci sono" if plural else "c'è"
