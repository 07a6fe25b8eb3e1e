"""The sign language's own grammar: a shared-grammar meaning becomes a sequence of signs.

Its word order differs from every spoken language of the corpus:

- topic-comment: a clause's ground comes first, as a topic under raised eyebrows, and is set up at a locus in
  signing space by pointing (IX); "next to it" points back at that locus instead of naming it again;
- modifiers follow the noun (THING COLOUR SIZE NUMBER), and a known (definite) thing is followed by IX;
- the relation is a classifier sign made at the ground's locus, and the verb comes last (subject object verb);
- a colour predicate ("the cup is red") is the colour sign after the noun, under a head nod, with no copula;
- size carries a mouth gesture (puffed cheeks for BIG, pursed lips for SMALL) spread over the whole noun phrase;
- every clause ends in a nod, and clauses follow one another without a sign for "and".
"""

from __future__ import annotations

from dataclasses import dataclass

from datamodules.corpus.grammar.meaning import Clause, Entity, Meaning
from datamodules.corpus.sign_lexicon import NUMBER_GLOSSES, RELATION_GLOSSES, gloss_of

LOCUS_ORDER = ("a", "b", "c")
"""Loci handed to new grounds in turn."""


@dataclass(frozen=True)
class Token:
    """One sign in a sentence, with its grammatical face and locus."""

    gloss: str
    """Lexicon gloss."""
    locus: str | None = None
    """Referential locus the sign is made at or points to (IX, relation classifiers)."""
    topic: bool = False
    """Under the topic marker (raised eyebrows, head tilted back)."""
    mouth: str = "none"
    """Mouth gesture spread from a size sign over its noun phrase ("puff", "purse")."""
    nod: bool = False
    """Ends a clause with a head nod."""
    pause: bool = False
    """A clause boundary follows (a longer hold)."""

    def text(self) -> str:
        """The gloss as written in the corpus (IX with its locus: "IX-a")."""
        return f"{self.gloss}-{self.locus}" if self.gloss == "IX" and self.locus else self.gloss


def noun_phrase(e: Entity, topic: bool = False, locus: str | None = None) -> list[Token]:
    """THING [COLOUR] [SIZE] [NUMBER] [IX]: modifiers after the noun; IX marks a known thing (at ``locus``)."""
    mouth = {"big": "puff", "small": "purse"}.get(e.size or "", "none")
    glosses = [gloss_of(e.noun)]
    if e.colour:
        glosses.append(gloss_of(e.colour))
    if e.size:
        glosses.append(e.size.upper())
    if e.count > 1:
        glosses.append(NUMBER_GLOSSES[e.count])
    tokens = [Token(g, None, topic, mouth) for g in glosses]
    if e.definite or locus:
        tokens.append(Token("IX", locus or "c", topic, mouth))
    return tokens


def clause_tokens(c: Clause, loci: dict[Entity, str], last_ground: Entity | None) -> tuple[list[Token], Entity | None]:
    """One clause in sign order; ``loci`` maps grounds already set up to their loci (updated in place)."""
    tokens: list[Token] = []
    ground = c.ground if c.ground is not None else (last_ground if c.anaphoric else None)
    locus = None
    if ground is not None:
        if ground in loci:  # pointing back at a ground already in space ("next to it")
            locus = loci[ground]
            tokens.append(Token("IX", locus, topic=True))
        else:
            locus = LOCUS_ORDER[len(loci) % len(LOCUS_ORDER)]
            loci[ground] = locus
            tokens += noun_phrase(ground, topic=True, locus=locus)
    tokens += noun_phrase(c.subject)
    if c.relation:
        tokens.append(Token(RELATION_GLOSSES[c.relation], locus))
    if c.object is not None:
        tokens += noun_phrase(c.object)
    if c.verb == "be":
        tokens.append(Token(gloss_of(c.attribute or "")))
    else:
        tokens.append(Token(gloss_of(c.verb)))
    last = tokens[-1]
    tokens[-1] = Token(last.gloss, last.locus, last.topic, last.mouth, nod=True, pause=True)
    return tokens, ground


def sentence(meaning: Meaning) -> list[Token]:
    """The signs of a meaning, clause by clause."""
    loci: dict[Entity, str] = {}
    out: list[Token] = []
    ground: Entity | None = None
    for c in meaning.clauses:
        tokens, ground = clause_tokens(c, loci, ground)
        out += tokens
    return out


def gloss_string(tokens: list[Token]) -> str:
    """Space-separated glosses ("TABLE IX-a CUP RED ON STAND")."""
    return " ".join(t.text() for t in tokens)
