"""Seeded sampler of plausible scene meanings (short, medium and long)."""

from __future__ import annotations

import random

from datamodules.corpus.grammar.concepts import Concepts, concepts
from datamodules.corpus.grammar.meaning import ANAPHORIC_RELATIONS, Clause, Entity, Meaning

COUNTS = (1,) * 11 + (2,) * 4 + (3,) * 2 + (4, 5, 6, 7, 8, 9)
"""Counts weighted towards one, two and three."""
FLAT_COUNTS = (1, 1, 1, 2, 2, 3, 3, 4, 5, 6, 7, 8, 9)
"""Counts for short sentences."""
LENGTHS = {"short": 0.4, "medium": 0.4, "long": 0.2}
"""Default share of each meaning length."""


class MeaningSampler:
    """Draws meanings from the concept inventory; the same seed gives the same stream."""

    def __init__(self, seed: int | str = 0, lengths: dict[str, float] | None = None, inv: Concepts | None = None):
        self.rng = random.Random(seed)
        self.c = inv or concepts()
        self.lengths = lengths or LENGTHS
        self.figures = sorted(k for k, n in self.c.nouns.items() if n.figure)
        self.grounds = sorted(k for k, n in self.c.nouns.items() if n.ground)
        self.actors = sorted(k for k in self.figures if self.c.verbs_for(k) or self.c.transitive_for(k))

    def sample(self, length: str | None = None) -> Meaning:
        """One meaning of the given length (drawn from ``lengths`` when None)."""
        if length is None:
            length = self.rng.choices(list(self.lengths), weights=list(self.lengths.values()))[0]
        if length == "short":
            return Meaning((self._short(),), "short")
        if length == "medium":
            clause = self._location() if self.rng.random() < 0.6 else self._action(with_relation=True)
            return Meaning((clause,), "medium")
        if length == "long":
            return Meaning(self._long(), "long")
        raise ValueError(f"unknown meaning length {length!r}; use short, medium or long")

    def entity(self, noun: str, ground: bool = False, varied: bool = False) -> Entity:
        """A random description of ``noun``; grounds are single and definite, ``varied`` spreads counts and modifiers
        wider (short sentences have nothing else to vary)."""
        n, r = self.c.nouns[noun], self.rng
        colours = n.colours or (self.c.animal_colours if n.type == "animal" else self.c.colours)
        p_colour, p_size = (0.4, 0.15) if ground else ((0.6, 0.4) if varied else (0.35, 0.3))
        colour = r.choice(colours) if n.type != "person" and r.random() < p_colour else None
        size = r.choice(self.c.sizes) if n.type != "person" and r.random() < p_size else None
        if ground:
            return Entity(noun, 1, colour, size, True)
        count = r.choice(FLAT_COUNTS if varied else COUNTS)
        return Entity(noun, count, colour, size, count == 1 and r.random() < 0.4)

    def _short(self) -> Clause:
        if self.rng.random() < 0.75:
            return self._action(with_relation=False, varied=True)
        noun = self.rng.choice([k for k in self.figures if self.c.nouns[k].type in ("object", "furniture", "vehicle")])
        subj = Entity(noun, 1, None, self.entity(noun, varied=True).size, True)
        return Clause(subj, "be", attribute=self.rng.choice(self.c.nouns[noun].colours or self.c.colours))

    def _action(self, with_relation: bool, anaphoric_to: Entity | None = None, varied: bool = False) -> Clause:
        noun = self.rng.choice(self.actors)
        transitive = self.c.transitive_for(noun)
        obj = None
        if transitive and self.rng.random() < 0.3:  # "a girl is holding a red ball"
            verb = self.rng.choice(transitive)
            obj = self.entity(self.rng.choice(self.c.objects_for(verb)), varied=varied)
        else:
            verb = self.rng.choice(self.c.verbs_for(noun))
        subj = self.entity(noun, varied=varied)
        if anaphoric_to is not None:
            return Clause(subj, verb, self.rng.choice(ANAPHORIC_RELATIONS), object=obj)
        if not with_relation:
            return Clause(subj, verb, object=obj)
        relation, ground = self._relation(noun, verb)
        return Clause(subj, verb, relation, self.entity(ground, ground=True), object=obj)

    def _location(self, anaphoric_to: Entity | None = None) -> Clause:
        noun = self.rng.choice(self.figures)
        posture = self.rng.choice(self.c.nouns[noun].postures)
        subj = self.entity(noun)
        if anaphoric_to is not None:
            return Clause(subj, posture, self.rng.choice(ANAPHORIC_RELATIONS))
        relation, ground = self._relation(noun, posture)
        return Clause(subj, posture, relation, self.entity(ground, ground=True))

    def _relation(self, noun: str, verb: str) -> tuple[str, str]:
        """A relation and a ground that make physical sense for ``noun`` doing ``verb``."""
        n = self.c.nouns[noun]
        options: list[tuple[str, str]] = []
        for g in self.grounds:
            gn = self.c.nouns[g]
            if g == noun:
                continue
            if gn.on and (n.size < gn.size or (verb == "sit" and gn.seat and n.type == "person")) and (
                    verb in self.c.verbs_on or verb in ("stand", "lie", "sit")):
                options.append(("on", g))
            if gn.under and n.size < gn.size:
                options.append(("under", g))
            if gn.size - n.size <= 4 and n.size - gn.size <= 2:
                options += [(r, g) for r in ("next_to", "left_of", "in_front_of", "behind")]
        return self.rng.choice(options)

    def _long(self) -> tuple[Clause, ...]:
        first = self._location()
        second = (self._action(True, anaphoric_to=first.ground) if self.rng.random() < 0.6
                  else self._location(anaphoric_to=first.ground))
        if self.rng.random() < 0.35:
            third = self._action(with_relation=True) if self.rng.random() < 0.5 else self._location()
            return first, second, third
        return first, second
