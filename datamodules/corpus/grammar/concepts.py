"""The language-independent concept inventory (lexicon/concepts.json)."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class Noun:
    """What a noun concept can do in a scene."""

    id: str
    """Concept id."""
    type: str
    """object, furniture, structure, animal, person or vehicle."""
    size: int
    """Rough size class, 1 (hand-held) to 7 (building)."""
    postures: tuple[str, ...]
    """How it rests: stand, lie, sit."""
    figure: bool
    """May be a clause subject."""
    ground: bool
    """May be a reference object of a relation."""
    on: bool
    """Has a surface things rest on."""
    under: bool
    """Has room beneath it."""
    seat: bool
    """Can be sat on."""
    colours: tuple[str, ...] = ()
    """Plausible colours (empty: any)."""

    @property
    def animate(self) -> bool:
        """Animals and people."""
        return self.type in ("animal", "person")


@dataclass(frozen=True)
class Concepts:
    """All nouns, colours, sizes and verbs the sampler draws from."""

    nouns: dict[str, Noun]
    """Noun concepts by id."""
    colours: tuple[str, ...]
    """Colour ids."""
    animal_colours: tuple[str, ...]
    """Colours plausible for animals."""
    sizes: tuple[str, ...]
    """Size adjective ids."""
    verbs: dict[str, tuple[str, ...]]
    """Action verb -> noun types or noun ids that may be its subject."""
    verbs_on: tuple[str, ...]
    """Actions that can take place on a surface."""
    transitive: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]
    """Transitive verb -> (subject types or ids, object types or ids)."""

    def objects_for(self, verb: str) -> list[str]:
        """Nouns that can be the object of a transitive ``verb``."""
        kinds = self.transitive[verb][1]
        return sorted(k for k, n in self.nouns.items() if n.type in kinds or k in kinds)

    def transitive_for(self, noun: str) -> list[str]:
        """Transitive verbs whose subject may be ``noun``."""
        n = self.nouns[noun]
        return [v for v, (subj, _) in self.transitive.items() if n.type in subj or noun in subj]

    def verbs_for(self, noun: str) -> list[str]:
        """Action verbs whose subject may be ``noun``."""
        n = self.nouns[noun]
        return [v for v, subj in self.verbs.items() if n.type in subj or noun in subj]


def _noun(key: str, d: dict[str, Any]) -> Noun:
    return Noun(key, d["type"], int(d["size"]), tuple(d["postures"]), bool(d.get("figure", False)),
                bool(d.get("ground", False)), bool(d.get("on", False)), bool(d.get("under", False)),
                bool(d.get("seat", False)), tuple(d.get("colours", ())))


@functools.cache
def concepts() -> Concepts:
    """Load the packaged concept inventory."""
    res = resources.files("datamodules.corpus.grammar").joinpath("lexicon", "concepts.json")
    d = json.loads(res.read_text(encoding="utf-8"))
    return Concepts({k: _noun(k, v) for k, v in d["nouns"].items()}, tuple(d["colours"]), tuple(d["animal_colours"]),
                    tuple(d["sizes"]), {k: tuple(v) for k, v in d["verbs"].items()}, tuple(d["verbs_on"]),
                    {k: (tuple(v[0]), tuple(v[1])) for k, v in d["transitive"].items()})
