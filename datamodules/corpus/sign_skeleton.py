"""Posing the body: control tracks become 543 Holistic keypoints per frame, as a tracker would report them.

Arms follow the hands by two-link inverse kinematics, the face carries the eyebrow, mouth and cheek gestures and
turns with the head, the body sways a little, and the points are projected to normalised image coordinates through
the signer's camera framing. Tracking is imperfect: points jitter, legs are out of frame, and a hand is lost for a
few frames when it moves fast, passes the face or leaves the frame (NaN coordinates and confidence 0).
"""

from __future__ import annotations

import numpy as np

from datamodules.corpus import sign_motion as m
from datamodules.corpus.sign_hand import mirror, place_hand, rotation
from datamodules.corpus.sign_layout import (
    FACE_HALF_WIDTH,
    FACE_START,
    HAND,
    LEFT_HAND_START,
    POINTS,
    RIGHT_HAND_START,
    face_template,
)
from datamodules.corpus.sign_signer import Signer

# Face-mesh indices that pose landmarks 1-10 copy (eye corners, mouth corners).
_EYE_INNER_L, _EYE_OUTER_L, _EYE_INNER_R, _EYE_OUTER_R, _MOUTH_L, _MOUTH_R, _NOSE_TIP = 362, 263, 133, 33, 291, 61, 1


def _slow_noise(rng: np.random.Generator, t: int, dims: int, scale: float, smooth: float = 6.0) -> np.ndarray:
    """A smooth random drift [t, dims] with standard deviation about ``scale``."""
    x = m._blur(rng.normal(0.0, 1.0, (t, dims)), smooth)
    return np.asarray(x / (x.std() + 1e-9) * scale)


def elbows(shoulder: np.ndarray, wrist: np.ndarray, upper: float, fore: float, side: float) -> np.ndarray:
    """Elbow positions [T, 3] reaching ``wrist`` from ``shoulder``; the elbow hangs down, out (``side``) and back."""
    d = wrist - shoulder
    dist = np.clip(np.linalg.norm(d, axis=-1, keepdims=True), abs(upper - fore) + 1e-3, upper + fore - 1e-3)
    u = d / np.maximum(np.linalg.norm(d, axis=-1, keepdims=True), 1e-6)
    a = (upper**2 - fore**2 + dist**2) / (2 * dist)
    h = np.sqrt(np.maximum(upper**2 - a**2, 0.0))
    pole = np.array([0.3 * side, 1.0, -0.8])  # elbows hang down, or come forward when the hand is high
    perp = pole - (u @ pole)[:, None] * u
    perp /= np.maximum(np.linalg.norm(perp, axis=-1, keepdims=True), 1e-6)
    return np.asarray(shoulder + a * u + h * perp)


def face_points(tracks: np.ndarray, signer: Signer, centre: np.ndarray, pivot: np.ndarray) -> np.ndarray:
    """Face mesh [T, 468, 3] in body space with the gestures of the face channels, turned with the head."""
    tmpl, reg = face_template()
    t = tracks.shape[0]
    f = np.repeat(tmpl[None], t, 0)
    brow, open_, cheeks = tracks[:, m.BROW], np.clip(tracks[:, m.MOUTH_OPEN], 0, 1.5), tracks[:, m.CHEEKS]
    f[:, reg["brows"], 1] -= 0.12 * brow[:, None]
    f[:, reg["brows"], 0] *= 1.0 + 0.08 * np.minimum(brow, 0.0)[:, None]  # a frown pulls the brows together
    below = tmpl[:, 1] > 0.63  # jaw, chin and lower lip drop when the mouth opens
    f[:, below, 1] += 0.3 * open_[:, None]
    puff = np.maximum(cheeks, 0.0)[:, None]
    f[:, reg["cheeks"], 0] *= 1.0 + 0.12 * puff
    f[:, reg["cheeks"], 2] -= 0.15 * puff
    purse = np.maximum(-cheeks, 0.0)[:, None]
    f[:, reg["lips"], 0] *= 1.0 - 0.3 * purse
    f[:, reg["lips"], 2] -= 0.15 * purse
    pts = f * FACE_HALF_WIDTH * signer.head + centre[:, None, :]
    rot = rotation(tracks[:, m.HEAD])
    return np.asarray(np.matmul(pts - pivot[:, None], rot.transpose(0, 2, 1)) + pivot[:, None])


def body_points(tracks: np.ndarray, signer: Signer, rng: np.random.Generator) -> np.ndarray:
    """All 543 points [T, 543, 3] in body space (cm)."""
    t = tracks.shape[0]
    sway = _slow_noise(rng, t, 3, 0.8)
    out = np.zeros((t, POINTS, 3))
    dom = place_hand(tracks[:, m.DOM_PALM], tracks[:, m.DOM_ROT], tracks[:, m.DOM_SHAPE], signer.hand)
    nd = mirror(place_hand(tracks[:, m.ND_PALM], tracks[:, m.ND_ROT], tracks[:, m.ND_SHAPE], signer.hand))
    right, left = (mirror(nd), mirror(dom)) if signer.left_handed else (dom, nd)
    right, left = right + sway[:, None], left + sway[:, None]
    out[:, RIGHT_HAND_START:RIGHT_HAND_START + HAND], out[:, LEFT_HAND_START:LEFT_HAND_START + HAND] = right, left
    sh = signer.shoulder_half
    centre = np.array([0.0, -signer.neck, -signer.lean]) + sway
    pivot = np.array([0.0, -8.0, 0.0]) + sway
    face = face_points(tracks, signer, centre, pivot)
    out[:, FACE_START:FACE_START + 468] = face
    for side, hand, k in ((1.0, left, 0), (-1.0, right, 1)):  # pose pairs: left (odd index), then right
        shoulder = np.array([side * sh, 0.0, 0.0]) + sway
        hip = np.array([side * 0.78 * sh, signer.torso, 2.0]) + 0.3 * sway
        out[:, 11 + k], out[:, 13 + k] = shoulder, elbows(shoulder, hand[:, 0], signer.upper_arm, signer.forearm, side)
        out[:, 15 + k], out[:, 17 + k], out[:, 19 + k], out[:, 21 + k] = hand[:, 0], hand[:, 17], hand[:, 6], hand[:, 3]
        out[:, 23 + k] = hip
        for j, (dy, dz) in enumerate(((45.0, -3.0), (88.0, 2.0), (93.0, 6.0), (95.0, -10.0))):
            out[:, 25 + 2 * j + k] = hip + np.array([0.0, dy, dz])
    out[:, 0] = face[:, _NOSE_TIP]
    out[:, 1], out[:, 3] = face[:, _EYE_INNER_L], face[:, _EYE_OUTER_L]
    out[:, 2] = 0.5 * (face[:, _EYE_INNER_L] + face[:, _EYE_OUTER_L])
    out[:, 4], out[:, 6] = face[:, _EYE_INNER_R], face[:, _EYE_OUTER_R]
    out[:, 5] = 0.5 * (face[:, _EYE_INNER_R] + face[:, _EYE_OUTER_R])
    rot = rotation(tracks[:, m.HEAD])
    for k, side in ((7, 1.0), (8, -1.0)):
        ear = np.array([side * 1.05, -0.15, 0.45]) * FACE_HALF_WIDTH * signer.head
        out[:, k] = np.einsum("tij,tj->ti", rot, centre + ear - pivot) + pivot
    out[:, 9], out[:, 10] = face[:, _MOUTH_L], face[:, _MOUTH_R]
    return out


def _dropouts(rng: np.random.Generator, p_start: np.ndarray, mean_len: float) -> np.ndarray:
    """Frames [T] lost to tracking runs that start with per-frame probability ``p_start`` [T]."""
    lost = np.zeros(len(p_start), dtype=bool)
    i = 0
    while i < len(p_start):
        if rng.random() < p_start[i]:
            n = int(rng.geometric(1.0 / mean_len))
            lost[i:i + n] = True
            i += n
        i += 1
    return lost


def track(body: np.ndarray, signer: Signer, rng: np.random.Generator, width: int, height: int,
          missing: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Normalised image coordinates [T, 543, 3] (float32, NaN where lost) and confidences [T, 543] of body points.

    ``missing`` scales how often a hand or the face is lost (0: only points out of frame are missing).
    """
    t = body.shape[0]
    noise = rng.normal(0.0, 1.0, body.shape) * signer.jitter
    noise[:, FACE_START:FACE_START + 468] *= 0.3
    noise[:, LEFT_HAND_START:] *= 0.6
    pts = body + noise
    s = signer.px_per_cm
    xyz = np.stack([(signer.centre_x * width + pts[..., 0] * s) / width,
                    (signer.shoulder_y * height + pts[..., 1] * s) / height, pts[..., 2] * s / width], -1)
    conf = np.ones((t, POINTS))  # MediaPipe reports no per-point confidence for faces and hands
    conf[:, :33] = np.clip(_slow_noise(rng, t, 33, 0.04) + rng.uniform(0.86, 0.99, 33), 0.5, 1.0)
    out = (xyz[..., 0] < 0) | (xyz[..., 0] > 1) | (xyz[..., 1] < 0) | (xyz[..., 1] > 1)
    lost = np.zeros((t, POINTS), dtype=bool)
    lost[:, :33] = out[:, :33]
    face_centre = body[:, FACE_START + 1]
    for start in (LEFT_HAND_START, RIGHT_HAND_START):
        hand = body[:, start:start + HAND]
        speed = np.linalg.norm(np.diff(hand[:, 0], axis=0, prepend=hand[:1, 0]), axis=-1)  # cm per frame
        near_face = np.linalg.norm(hand[:, 9] - face_centre, axis=-1) < 12.0
        p = missing * (0.006 + 0.05 * np.clip(speed / 6.0, 0, 1) + 0.04 * near_face)
        gone = _dropouts(rng, p, 3.0) | (out[:, start:start + HAND].mean(1) > 0.3)
        lost[:, start:start + HAND] = gone[:, None]
    face_gone = _dropouts(rng, np.full(t, 0.002 * missing), 4.0) | out[:, FACE_START:FACE_START + 468].any(1)
    lost[:, FACE_START:FACE_START + 468] = face_gone[:, None]
    xyz[lost], conf[lost] = np.nan, 0.0
    return xyz.astype(np.float32), conf.astype(np.float32)
