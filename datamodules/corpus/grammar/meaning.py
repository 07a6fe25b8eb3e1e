"""Structured meanings: entities, clauses and scenes, independent of any language."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

RELATIONS = ("on", "under", "next_to", "left_of", "in_front_of", "behind")
"""Spatial relations between a figure and a ground."""
ANAPHORIC_RELATIONS = ("next_to", "in_front_of", "behind")
"""Relations that may point back at the previous clause's ground ("next to it")."""
POSTURES = ("stand", "lie", "sit")
"""Verbs of position; languages without posture verbs use their copula."""


@dataclass(frozen=True)
class Entity:
    """A counted thing with optional colour and size."""

    noun: str
    """Concept id from concepts.json (e.g. "cup")."""
    count: int = 1
    """How many (1-9)."""
    colour: str | None = None
    """Colour concept id or None."""
    size: str | None = None
    """"big", "small" or None."""
    definite: bool = False
    """Known to the listener ("the cup"); only for count 1."""


@dataclass(frozen=True)
class Clause:
    """One predication about a subject: an action, a position, or a colour."""

    subject: Entity
    """Who or what the clause is about."""
    verb: str
    """Action verb, posture ("stand", "lie", "sit") or "be" (with ``attribute``)."""
    relation: str | None = None
    """Spatial relation to ``ground`` (or to the previous clause's ground when ``ground`` is None)."""
    ground: Entity | None = None
    """The reference object; None with a relation means "it" = the previous clause's ground."""
    attribute: str | None = None
    """Predicated colour for ``verb == "be"``."""
    object: Entity | None = None
    """Direct object of a transitive verb ("hold")."""

    @property
    def anaphoric(self) -> bool:
        """True when the relation points back at the previous ground ("next to it")."""
        return self.relation is not None and self.ground is None


@dataclass(frozen=True)
class Meaning:
    """A sentence meaning: one or more clauses joined by "and", plus free facets for other modalities."""

    clauses: tuple[Clause, ...]
    """The clauses in order."""
    length: str = "short"
    """"short" (one entity), "medium" (a relation) or "long" (several clauses)."""
    facets: dict[str, str] = field(default_factory=dict)
    """Extra structured facets (music: instrument, tempo, mood, key); empty for scenes."""

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form (the ``meaning`` field of the corpus)."""
        return asdict(self)

    def key(self) -> str:
        """Canonical string: equal meanings have equal keys."""
        return json.dumps(self.to_json(), sort_keys=True, ensure_ascii=False)

    @staticmethod
    def from_json(d: dict[str, Any]) -> Meaning:
        """Inverse of :meth:`to_json`."""
        clauses = []
        for c in d["clauses"]:
            ground = Entity(**c["ground"]) if c.get("ground") else None
            obj = Entity(**c["object"]) if c.get("object") else None
            subject = Entity(**c["subject"])
            clauses.append(Clause(subject, c["verb"], c.get("relation"), ground, c.get("attribute"), obj))
        return Meaning(tuple(clauses), d.get("length", "short"), dict(d.get("facets") or {}))

    def antecedents(self) -> list[Entity | None]:
        """For each clause, the entity "it" refers to (the previous clause's ground), if any."""
        out: list[Entity | None] = []
        prev: Entity | None = None
        for c in self.clauses:
            out.append(prev if c.anaphoric else None)
            prev = c.ground or prev
        return out
