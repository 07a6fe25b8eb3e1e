"""Hand kinematics of the sign corpus: hand shapes as finger joint angles, palm orientations, and the 21 hand points.

A hand is computed as a right hand in its own frame (wrist at the origin, fingers up along -y, palm facing the
camera along -z, thumb towards +x), posed by a rotation and placed at the wrist. Left hands are mirror images.
"""

from __future__ import annotations

import numpy as np

SHAPE_DIMS = 7
"""Hand-shape vector: flexion of index, middle, ring, pinky (0 straight .. 1 fist), thumb flexion, finger spread
(0 together .. 1 wide), thumb opposition (0 out to the side .. 1 across the palm)."""

HANDSHAPES: dict[str, tuple[float, ...]] = {
    "B": (0, 0, 0, 0, 0.5, 0.0, 0.9), "5": (0, 0, 0, 0, 0.0, 1.0, 0.0), "A": (1, 1, 1, 1, 0.1, 0.0, 0.1),
    "S": (1, 1, 1, 1, 0.7, 0.0, 1.0), "1": (0, 1, 1, 1, 0.7, 0.0, 1.0), "V": (0, 0, 1, 1, 0.7, 0.8, 1.0),
    "W": (0, 0, 0, 1, 0.8, 0.7, 1.0), "L": (0, 1, 1, 1, 0.0, 0.0, 0.0), "Y": (1, 1, 1, 0, 0.0, 0.9, 0.0),
    "C": (0.45, 0.45, 0.45, 0.45, 0.3, 0.1, 0.6), "O": (0.65, 0.65, 0.65, 0.65, 0.6, 0.0, 1.0),
    "claw": (0.6, 0.6, 0.6, 0.6, 0.4, 1.0, 0.3), "X": (0.55, 1, 1, 1, 0.7, 0.0, 1.0), "I": (1, 1, 1, 0, 0.7, 0.0, 1.0),
    "H": (0, 0, 1, 1, 0.7, 0.0, 1.0), "F": (0.7, 0, 0, 0, 0.7, 0.6, 0.8), "3": (0, 0, 1, 1, 0.0, 0.8, 0.0),
    "4": (0, 0, 0, 0, 1.0, 0.7, 1.0), "7": (0, 0, 0.9, 0, 0.9, 0.6, 1.0), "8": (0, 0.9, 0, 0, 0.9, 0.6, 1.0),
    "E": (0.85, 0.85, 0.85, 0.85, 0.9, 0.0, 1.0), "K": (0, 0.3, 1, 1, 0.3, 0.5, 0.7),
    "R": (0, 0.1, 1, 1, 0.7, -0.3, 1.0),
    "flatO": (0.5, 0.5, 0.5, 0.5, 0.5, 0.0, 0.9), "bentV": (0.6, 0.6, 1, 1, 0.7, 0.8, 1.0),
    "relaxed": (0.3, 0.35, 0.4, 0.4, 0.2, 0.2, 0.3),
}
"""Named hand shapes (rough sign-language hand shapes; "relaxed" is the resting hand)."""

ORIENTATIONS: dict[str, tuple[float, float, float]] = {
    "forward": (0, 0, 0), "back": (180, 0, 0), "in": (-75, 0, 0), "down": (0, 90, 0), "up": (180, 90, 0),
    "across": (0, 0, -80), "down_in": (-60, 70, 0), "tilted": (-30, 20, -30),
}
"""Palm orientations as (yaw about y, pitch about x, roll about z) in degrees for a right hand; "forward" is palm
to the camera with the fingers up, "down" palm down with the fingers pointing forward."""

# Finger bases (MCP) in the hand frame (cm), and segment lengths proximal .. distal.
_MCP = np.array([[2.3, -9.0, 0.0], [0.6, -9.5, 0.0], [-1.1, -9.1, 0.2], [-2.6, -8.2, 0.4]])
_SEGMENTS = np.array([[4.0, 2.4, 2.0], [4.5, 2.8, 2.1], [4.2, 2.6, 2.0], [3.3, 2.0, 1.8]])
_JOINT_SHARE = np.array([1.5, 1.7, 1.2])
"""Flexion (radians at full fist) of the MCP, PIP and DIP joints."""
_SPREAD = np.radians([12.0, 3.0, -6.0, -15.0])
"""Abduction of each finger at full spread (positive towards the thumb)."""
_THUMB_CMC = np.array([2.2, -2.2, -0.5])
_THUMB_SEG = np.array([4.0, 3.2, 2.8])
_THUMB_OUT = np.array([0.62, -0.78, -0.15])
_THUMB_OPP = np.array([-0.35, -0.75, -0.55])
_THUMB_CURL = np.array([-0.9, 0.15, -0.4])
PALM_CENTRE = np.array([0.0, -4.8, 0.0])
"""Palm centre in the hand frame: the point a sign's location refers to."""


def rotation(euler_deg: np.ndarray) -> np.ndarray:
    """Rotation matrices [..., 3, 3] from (yaw, pitch, roll) degrees [..., 3]: roll, then yaw, then pitch."""
    a = np.radians(euler_deg)
    cy, sy = np.cos(a[..., 0]), np.sin(a[..., 0])
    cp, sp = np.cos(a[..., 1]), np.sin(a[..., 1])
    cr, sr = np.cos(a[..., 2]), np.sin(a[..., 2])
    one, zero = np.ones_like(cy), np.zeros_like(cy)
    ry = np.stack([np.stack([cy, zero, sy], -1), np.stack([zero, one, zero], -1), np.stack([-sy, zero, cy], -1)], -2)
    rx = np.stack([np.stack([one, zero, zero], -1), np.stack([zero, cp, -sp], -1), np.stack([zero, sp, cp], -1)], -2)
    rz = np.stack([np.stack([cr, -sr, zero], -1), np.stack([sr, cr, zero], -1), np.stack([zero, zero, one], -1)], -2)
    return np.asarray(rx @ ry @ rz)


def _unit(v: np.ndarray) -> np.ndarray:
    return np.asarray(v / np.linalg.norm(v, axis=-1, keepdims=True))


def local_hand(shape: np.ndarray, size: float = 1.0) -> np.ndarray:
    """The 21 points of a right hand in its own frame [T, 21, 3] for hand-shape vectors [T, 7]."""
    t = shape.shape[0]
    out = np.zeros((t, 21, 3))
    for f in range(4):
        flex, ab = shape[:, f], shape[:, 5] * _SPREAD[f]
        joint = np.broadcast_to(_MCP[f], (t, 3)).copy()
        out[:, 5 + 4 * f] = joint
        angle = np.zeros(t)
        for k in range(3):
            angle = angle + flex * _JOINT_SHARE[k]
            # Straight finger up (-y), tilted sideways by the spread, curled towards the palm (-z) by the flexion.
            d = np.stack([np.sin(ab) * np.cos(angle), -np.cos(ab) * np.cos(angle), -np.sin(angle)], -1)
            joint = joint + _SEGMENTS[f, k] * d
            out[:, 6 + 4 * f + k] = joint
    flex, opp = shape[:, 4:5], shape[:, 6:7]
    base = _unit((1 - opp) * _THUMB_OUT + opp * _THUMB_OPP)
    joint = np.broadcast_to(_THUMB_CMC, (t, 3)).copy()
    out[:, 1] = joint
    for k in range(3):
        bend = flex * (0.35 + 0.45 * k)
        d = _unit(np.cos(bend) * base + np.sin(bend) * _THUMB_CURL)
        joint = joint + _THUMB_SEG[k] * d
        out[:, 2 + k] = joint
    return out * size


def place_hand(palm: np.ndarray, euler: np.ndarray, shape: np.ndarray, size: float = 1.0) -> np.ndarray:
    """Right-hand points [T, 21, 3] in body space with the palm centre at ``palm`` [T, 3] and orientation [T, 3]."""
    rot = rotation(euler)  # [T, 3, 3]
    pts = np.einsum("tij,tpj->tpi", rot, local_hand(shape, size))
    wrist = palm - np.einsum("tij,j->ti", rot, PALM_CENTRE * size)
    return np.asarray(pts + wrist[:, None, :])


def mirror(points: np.ndarray) -> np.ndarray:
    """Reflect body-space points through the body's midline (x -> -x)."""
    out = points.copy()
    out[..., 0] = -out[..., 0]
    return out
