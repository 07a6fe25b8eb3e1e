"""Synthetic signers: body proportions, handedness, tempo, sign-space size, precision and camera framing."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Signer:
    """One signer's body and style (lengths in centimetres)."""

    id: str
    """Signer id ("s03")."""
    left_handed: bool
    """Signs with the left hand as the dominant hand (every sign mirrored)."""
    shoulder_half: float
    """Half the shoulder width."""
    upper_arm: float
    """Shoulder to elbow."""
    forearm: float
    """Elbow to wrist."""
    hand: float
    """Hand size relative to an average hand."""
    head: float
    """Head size relative to an average head."""
    neck: float
    """Shoulder line to the face centre."""
    torso: float
    """Shoulder line to the hip line."""
    space: float
    """Sign-space size: scales locations' spread and movements."""
    speed: float
    """Tempo: frames per sign are divided by it."""
    jitter: float
    """Standard deviation of tracking noise (cm)."""
    laxness: float
    """How far hand shapes relax towards a loose hand (0 crisp .. 0.35 lax)."""
    expressive: float
    """Amplitude of facial and head gestures."""
    lean: float
    """Forward lean of the head (cm towards the camera)."""
    px_per_cm: float
    """Camera scale."""
    centre_x: float
    """Image x of the body's midline, as a share of the frame width."""
    shoulder_y: float
    """Image y of the shoulder line, as a share of the frame height."""

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form (corpus.json lists every signer)."""
        return asdict(self)


def make_signer(index: int, seed: int = 0) -> Signer:
    """Signer ``index``: one in five is left-handed (indices 2, 7, 12, ...), the rest drawn from the seed."""
    r = random.Random(f"signer:{seed}:{index}")
    build = r.gauss(1.0, 0.07)  # taller signers have longer everything
    return Signer(
        id=f"s{index:02d}", left_handed=index % 5 == 2, shoulder_half=19.0 * build * r.uniform(0.92, 1.08),
        upper_arm=30.0 * build * r.uniform(0.95, 1.05), forearm=26.0 * build * r.uniform(0.95, 1.05),
        hand=build * r.uniform(0.9, 1.1), head=r.uniform(0.9, 1.1), neck=27.0 * build * r.uniform(0.93, 1.07),
        torso=50.0 * build, space=r.uniform(0.75, 1.3), speed=r.uniform(0.8, 1.25), jitter=r.uniform(0.15, 0.6),
        laxness=r.uniform(0.0, 0.35), expressive=r.uniform(0.5, 1.4), lean=r.uniform(-2.0, 3.0),
        px_per_cm=r.uniform(3.6, 4.4), centre_x=r.uniform(0.44, 0.56), shoulder_y=r.uniform(0.38, 0.44))


def signers(n: int, seed: int = 0) -> list[Signer]:
    """The first ``n`` signers."""
    return [make_signer(i, seed) for i in range(n)]
