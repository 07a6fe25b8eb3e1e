"""The MediaPipe Holistic keypoint layout (543 points) and the synthetic face the sign corpus draws.

Order: 33 body pose points, 468 face mesh points, 21 left-hand points, 21 right-hand points. "Left" is the
signer's left, which a camera facing the signer sees on the right of the image (larger x).

The face is a parametric face, not MediaPipe's canonical mesh, but the points MediaPipe's published contours name
(face oval, eyes, eyebrows, lips, nose tip) carry their MediaPipe indices, so a reader that keeps a contour subset
by index gets the matching parts of this face. The other indices are spread over the face surface.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np

POSE, FACE, HAND = 33, 468, 21
"""Points per component."""
POINTS = POSE + FACE + 2 * HAND
"""543."""
FACE_START, LEFT_HAND_START, RIGHT_HAND_START = POSE, POSE + FACE, POSE + FACE + HAND
"""Offsets of the components in the 543-point array."""
COMPONENTS = (("POSE_LANDMARKS", 0, POSE), ("FACE_LANDMARKS", FACE_START, FACE),
              ("LEFT_HAND_LANDMARKS", LEFT_HAND_START, HAND), ("RIGHT_HAND_LANDMARKS", RIGHT_HAND_START, HAND))
"""(pose-format component name, offset, points), in array order."""

POSE_NAMES = (
    "NOSE", "LEFT_EYE_INNER", "LEFT_EYE", "LEFT_EYE_OUTER", "RIGHT_EYE_INNER", "RIGHT_EYE", "RIGHT_EYE_OUTER",
    "LEFT_EAR", "RIGHT_EAR", "MOUTH_LEFT", "MOUTH_RIGHT", "LEFT_SHOULDER", "RIGHT_SHOULDER", "LEFT_ELBOW",
    "RIGHT_ELBOW", "LEFT_WRIST", "RIGHT_WRIST", "LEFT_PINKY", "RIGHT_PINKY", "LEFT_INDEX", "RIGHT_INDEX",
    "LEFT_THUMB", "RIGHT_THUMB", "LEFT_HIP", "RIGHT_HIP", "LEFT_KNEE", "RIGHT_KNEE", "LEFT_ANKLE", "RIGHT_ANKLE",
    "LEFT_HEEL", "RIGHT_HEEL", "LEFT_FOOT_INDEX", "RIGHT_FOOT_INDEX")
HAND_NAMES = ("WRIST", *(f"THUMB_{j}" for j in ("CMC", "MCP", "IP", "TIP")),
              *(f"{f}_{j}" for f in ("INDEX_FINGER", "MIDDLE_FINGER", "RING_FINGER", "PINKY")
                for j in ("MCP", "PIP", "DIP", "TIP")))

POSE_LIMBS = ((0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10), (11, 12), (11, 13), (13, 15),
              (15, 17), (15, 19), (15, 21), (17, 19), (12, 14), (14, 16), (16, 18), (16, 20), (16, 22), (18, 20),
              (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28), (27, 29), (28, 30), (29, 31),
              (30, 32), (27, 31), (28, 32))
HAND_LIMBS = ((0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11), (11, 12),
              (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19), (19, 20))

# MediaPipe face-mesh indices of the contours, each listed from one end to the other.
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176,
             149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
"""Clockwise in the image from the top of the forehead (10), through the chin (152)."""
LIPS = {"outer_upper": (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291),
        "outer_lower": (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291),
        "inner_upper": (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308),
        "inner_lower": (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)}
"""From the signer's right mouth corner (image left) to the left one."""
EYES = {"right_upper": (33, 246, 161, 160, 159, 158, 157, 173, 133), "right_lower": (33, 7, 163, 144, 145, 153, 154,
        155, 133), "left_upper": (263, 466, 388, 387, 386, 385, 384, 398, 362),
        "left_lower": (263, 249, 390, 373, 374, 380, 381, 382, 362)}
"""From the outer corner to the inner one."""
BROWS = {"right_upper": (70, 63, 105, 66, 107), "right_lower": (46, 53, 52, 65, 55),
         "left_upper": (300, 293, 334, 296, 336), "left_lower": (276, 283, 282, 295, 285)}
"""From the outer end to the inner one."""
NOSE = {"bridge": (168, 6, 197, 195, 5, 4, 1), "nostrils": (98, 327)}
"""Top of the bridge down to the tip (1); the nostril wings."""

FACE_HALF_WIDTH = 7.5
"""Half the face's width in centimetres; the template's unit."""


def _arc(a: np.ndarray, b: np.ndarray, n: int, bulge: float) -> np.ndarray:
    """``n`` points from ``a`` to ``b`` (2-D), bowed by ``bulge`` in y at the middle."""
    s = np.linspace(0.0, 1.0, n)[:, None]
    pts = a + (b - a) * s
    pts[:, 1] += bulge * np.sin(np.pi * s[:, 0])
    return np.asarray(pts)


@functools.cache
def face_template() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The neutral face [468, 3] in template units (x right in the image, y down, z towards the camera negative),
    and the region -> face-index arrays that expressions move (brows, lips, cheeks, jaw)."""
    pts = np.full((FACE, 3), np.nan)
    xy: dict[int, tuple[float, float]] = {}
    theta = np.linspace(0.0, 2 * np.pi, len(FACE_OVAL), endpoint=False)
    for i, t in zip(FACE_OVAL, theta):
        xy[i] = (float(np.sin(t)), float(-1.35 * np.cos(t)))
    for side, sx in (("right", -1.0), ("left", 1.0)):
        outer, inner = np.array([sx * 0.62, -0.15]), np.array([sx * 0.2, -0.15])
        for part, bulge in (("upper", -0.11), ("lower", 0.08)):
            for i, p in zip(EYES[f"{side}_{part}"], _arc(outer, inner, 9, bulge)):
                xy[i] = (float(p[0]), float(p[1]))
        outer, inner = np.array([sx * 0.7, -0.42]), np.array([sx * 0.15, -0.45])
        for part, lift in (("upper", -0.05), ("lower", 0.03)):
            up = np.array([0.0, lift])
            for i, p in zip(BROWS[f"{side}_{part}"], _arc(outer + up, inner + up, 5, -0.1)):
                xy[i] = (float(p[0]), float(p[1]))
    corner_r, corner_l = np.array([-0.36, 0.62]), np.array([0.36, 0.62])
    for part, bulge in (("outer_upper", -0.12), ("outer_lower", 0.14), ("inner_upper", -0.03), ("inner_lower", 0.03)):
        shrink = np.array([0.06 if part.startswith("inner") else 0.0, 0.0])
        for i, p in zip(LIPS[part], _arc(corner_r + shrink, corner_l - shrink, 11, bulge)):
            xy[i] = (float(p[0]), float(p[1]))
    for i, y in zip(NOSE["bridge"], np.linspace(-0.3, 0.25, len(NOSE["bridge"]))):
        xy[i] = (0.0, float(y))
    xy[NOSE["nostrils"][0]], xy[NOSE["nostrils"][1]] = (-0.17, 0.3), (0.17, 0.3)
    # The remaining indices tile the face on a jittered grid, so every point lies on the surface.
    rest = [i for i in range(FACE) if i not in xy]
    rng = np.random.default_rng(468)
    grid = [(x, y) for y in np.linspace(-1.25, 1.2, 24) for x in np.linspace(-0.95, 0.95, 20)
            if (x / 0.97) ** 2 + (y / 1.32) ** 2 < 1.0]
    order = rng.permutation(len(grid))[: len(rest)]
    assert len(grid) >= len(rest), "face grid too coarse"
    for i, k in zip(rest, sorted(order)):
        gx, gy = grid[k]
        xy[i] = (float(gx + rng.normal(0, 0.015)), float(gy + rng.normal(0, 0.015)))
    for i, (x, y) in xy.items():
        r2 = min(1.0, x * x + (y / 1.35) ** 2)
        nose = 0.35 * np.exp(-(x * x) / 0.02) * (1.0 if -0.35 < y < 0.35 else 0.0)
        pts[i] = (x, y, -0.55 * np.sqrt(1.0 - r2) - nose)
    regions = {
        "brows": np.array(sorted({i for v in BROWS.values() for i in v})),
        "upper_lips": np.array(sorted(set(LIPS["outer_upper"] + LIPS["inner_upper"]))),
        "lower_lips": np.array(sorted(set(LIPS["outer_lower"] + LIPS["inner_lower"]) - {61, 291, 78, 308})),
        "lips": np.array(sorted({i for v in LIPS.values() for i in v})),
        "cheeks": np.array([i for i in range(FACE) if abs(pts[i, 0]) > 0.45 and 0.0 < pts[i, 1] < 0.8]),
        "jaw": np.array([i for i in range(FACE) if pts[i, 1] > 0.7 and i not in LIPS["outer_upper"]]),
    }
    return pts, regions


def face_limbs() -> list[tuple[int, int]]:
    """Face contour segments (for drawing and the .pose header)."""
    lines = [FACE_OVAL + FACE_OVAL[:1], *LIPS.values(), *EYES.values(), *BROWS.values(), NOSE["bridge"]]
    return [(a, b) for line in lines for a, b in itertools.pairwise(line)]


def limbs() -> list[tuple[int, int]]:
    """Every limb as a pair of indices into the 543-point array."""
    out = list(POSE_LIMBS) + [(FACE_START + a, FACE_START + b) for a, b in face_limbs()]
    for start in (LEFT_HAND_START, RIGHT_HAND_START):
        out += [(start + a, start + b) for a, b in HAND_LIMBS]
    return out
