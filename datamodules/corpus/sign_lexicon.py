"""The sign lexicon: every gloss is a combination of motion primitives (hand shape, location, movement, palm
orientation, use of the second hand, mouth), drawn once from a seed so the language is fixed.

Positions are in centimetres in body space for a right-handed signer: origin between the shoulders, x towards the
signer's left (image right), y down, z away from the camera. A sign's location is where its palm centre is.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

import numpy as np

from datamodules.corpus.grammar.concepts import concepts
from datamodules.corpus.sign_hand import HANDSHAPES, ORIENTATIONS

LOCATIONS: dict[str, tuple[float, float, float]] = {
    "neutral": (-10, 20, -32), "neutral_high": (-12, 2, -34), "neutral_low": (-8, 32, -28), "chest": (-4, 12, -13),
    "stomach": (-4, 30, -13), "shoulder": (12, 2, -10), "forehead": (-3, -35, -12), "temple": (-9, -32, -6),
    "eye": (-4, -29, -12), "nose": (-1, -26, -14), "mouth": (-1, -21, -13), "chin": (-1, -16, -12),
    "cheek": (-7, -23, -9), "ear": (-11, -28, -3), "neck": (-1, -8, -8), "side": (-26, 18, -20),
}
"""Where a sign is made (palm centre)."""
LOCI: dict[str, tuple[float, float, float]] = {"a": (-20, 14, -34), "b": (14, 14, -34), "c": (-3, 6, -40)}
"""Referential loci in signing space: places an entity is set up at and pointed back to."""
REST = (-16, 48, -8)
"""Palm centre of a resting hand, by the hip."""
HOVER = (-9, 28, -24)
"""Palm centre of a hand held low in front while the next sign needs it."""

MOVEMENTS = ("hold", "tap", "down", "up", "out", "toward", "side", "arc", "circle", "shake", "zigzag", "twist",
             "open", "close", "wiggle")
"""Movement primitives (see :func:`movement_path`)."""
HANDS = ("one", "sym", "alt", "base")
"""One hand; both hands mirrored; both hands mirrored in opposite phase; the dominant hand acts on a still base."""
MOUTHS = ("none", "open", "puff", "purse")
"""Mouth gestures a sign can carry."""

_FACE_LOCS = ("forehead", "temple", "eye", "nose", "mouth", "chin", "cheek", "ear")
_BODY_LOCS = ("chest", "stomach", "shoulder", "neck")
_SPACE_LOCS = ("neutral", "neutral_high", "neutral_low", "side")
_NUMBERS = {2: "V", 3: "3", 4: "4", 5: "5", 6: "W", 7: "7", 8: "8", 9: "F"}
NUMBER_GLOSSES = {n: g for n, g in zip(range(2, 10), ("TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT",
                                                          "NINE"))}
"""Counts 2-9 -> gloss (a single thing takes no number sign)."""
RELATION_GLOSSES = {"on": "ON", "under": "UNDER", "next_to": "NEXT-TO", "left_of": "LEFT-OF",
                    "in_front_of": "IN-FRONT", "behind": "BEHIND"}
"""Spatial relations -> classifier gloss, articulated at the ground's locus."""


@dataclass(frozen=True)
class SignSpec:
    """One lexical sign."""

    gloss: str
    """Its gloss (upper case)."""
    shape: str
    """Hand shape of the dominant hand (sign_hand.HANDSHAPES)."""
    location: str
    """Where it is made (LOCATIONS), or "locus" for signs placed at a referential locus."""
    movement: str
    """Movement primitive (MOVEMENTS)."""
    orientation: str
    """Palm orientation (sign_hand.ORIENTATIONS)."""
    hands: str = "one"
    """Use of the second hand (HANDS)."""
    reps: int = 1
    """Times the movement is made."""
    mouth: str = "none"
    """Mouth gesture (MOUTHS)."""
    base_shape: str = "B"
    """Hand shape of the non-dominant hand in a "base" sign."""
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Where a locus sign's dominant hand sits relative to the locus (relations: on, under, behind...)."""


def movement_path(movement: str, s: np.ndarray) -> np.ndarray:
    """Palm-centre offsets [len(s), 3] (cm, before the signer's sign-space scale) along a movement, s in [0, 1]."""
    z = np.zeros_like(s)
    paths = {
        "hold": np.stack([z, 0.6 * np.sin(2 * np.pi * s), z], -1),
        "tap": np.stack([z, z, -3.0 * np.abs(np.sin(2 * np.pi * s))], -1),
        "down": np.stack([z, 10 * s - 5, z], -1), "up": np.stack([z, 5 - 10 * s, z], -1),
        "out": np.stack([z, z, 5 - 12 * s], -1), "toward": np.stack([z, z, 12 * s - 6], -1),
        "side": np.stack([6 - 12 * s, z, z], -1),
        "arc": np.stack([12 * s - 6, -6 * np.sin(np.pi * s), z], -1),
        "circle": np.stack([5 * np.cos(2 * np.pi * s) - 5, 5 * np.sin(2 * np.pi * s), z], -1),
        "shake": np.stack([3.5 * np.sin(4 * np.pi * s), z, z], -1),
        "zigzag": np.stack([4 * np.sin(6 * np.pi * s), 10 * s - 5, z], -1),
    }
    return np.asarray(paths.get(movement, np.stack([z, z, z], -1)))


def _spec(gloss: str, r: random.Random, locs: tuple[str, ...]) -> SignSpec:
    shapes = [s for s in HANDSHAPES if s not in ("relaxed", "4", "7", "8")]
    hands = r.choices(HANDS, weights=(0.55, 0.2, 0.1, 0.15))[0]
    move = r.choice([m for m in MOVEMENTS if not (hands == "base" and m in ("side", "circle"))])
    orient = r.choice([o for o in ORIENTATIONS if o != "back"])
    return SignSpec(gloss, r.choice(shapes), r.choice(locs) if hands != "base" else "neutral", move, orient, hands,
                    r.choice((1, 1, 2)), r.choices(MOUTHS, weights=(0.7, 0.15, 0.07, 0.08))[0],
                    r.choice(("B", "B", "S", "5", "1")))


def _fixed() -> list[SignSpec]:
    """Signs whose form follows their meaning: pointing, numbers, relation classifiers, postures and sizes."""
    out = [SignSpec("IX", "1", "locus", "out", "down_in")]
    out += [SignSpec(g, _NUMBERS[n], "neutral_high", "shake", "back") for n, g in NUMBER_GLOSSES.items()]
    rel = {"on": (0, -6, 0), "under": (0, 10, 0), "next_to": (-10, 0, 0), "left_of": (12, 0, 0),
           "in_front_of": (0, 0, -10), "behind": (0, 0, 10)}
    out += [SignSpec(RELATION_GLOSSES[k], "B" if k in ("on", "under") else "A", "locus", "down", "down", "base",
                     offset=(float(v[0]), float(v[1]), float(v[2]))) for k, v in rel.items()]
    out += [SignSpec("STAND", "V", "neutral", "down", "back", "base", base_shape="B"),
            SignSpec("LIE", "V", "neutral", "side", "up", "base", base_shape="B"),
            SignSpec("SIT", "bentV", "neutral", "tap", "down", "base", base_shape="H"),
            SignSpec("BIG", "claw", "neutral", "side", "in", "sym", mouth="puff"),
            SignSpec("SMALL", "B", "neutral", "toward", "in", "sym", mouth="purse")]
    return out


def vocabulary() -> dict[str, list[str]]:
    """Concept ids by class, from the shared grammar's concept inventory (the glosses are their upper-case ids)."""
    inv = concepts()
    return {"noun": sorted(inv.nouns), "colour": sorted(inv.colours),
            "verb": sorted([*inv.verbs, *inv.transitive])}


def gloss_of(concept: str) -> str:
    """The gloss of a concept id ("next_to" -> "NEXT-TO")."""
    return concept.upper().replace("_", "-")


@functools.cache
def lexicon(seed: int = 0) -> dict[str, SignSpec]:
    """Gloss -> sign; no two signs share hand shape, location, movement, orientation and use of hands."""
    r = random.Random(f"sign-lexicon:{seed}")
    signs = {s.gloss: s for s in _fixed()}
    used = {(s.shape, s.location, s.movement, s.orientation, s.hands) for s in signs.values()}
    # Colours tend to sit at the face and actions on the body or in space, as in many sign languages.
    where = {"noun": _SPACE_LOCS + _FACE_LOCS + _BODY_LOCS, "colour": (*_FACE_LOCS, "chin", "chin", "neutral_high"),
             "verb": _SPACE_LOCS + _SPACE_LOCS + _BODY_LOCS}
    for cls, ids in vocabulary().items():
        for concept in ids:
            gloss = gloss_of(concept)
            while True:
                spec = _spec(gloss, r, where[cls])
                key = (spec.shape, spec.location, spec.movement, spec.orientation, spec.hands)
                if key not in used:
                    break
            used.add(key)
            signs[gloss] = spec
    return signs
