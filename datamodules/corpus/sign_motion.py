"""Articulation: a sentence's signs become per-frame control tracks (both hands, face, head) with coarticulation.

Each sign is a hold, its movement and a short final hold; between signs the tracks glide along a minimum-jerk path
from the end of one sign to the start of the next, hand shape and orientation included, and a light temporal blur
rounds the corners, so a sign's form depends on its neighbours as in real signing. Tracks are in the canonical
right-handed frame; the non-dominant hand's tracks describe it as a right hand (mirrored when the body is posed).
"""

from __future__ import annotations

import numpy as np

from datamodules.corpus.sign_grammar import Token
from datamodules.corpus.sign_hand import HANDSHAPES, ORIENTATIONS, SHAPE_DIMS
from datamodules.corpus.sign_lexicon import HOVER, LOCATIONS, LOCI, REST, SignSpec, movement_path
from datamodules.corpus.sign_signer import Signer

# Channel layout of a track array [T, CHANNELS].
DOM_PALM, DOM_ROT, DOM_SHAPE = slice(0, 3), slice(3, 6), slice(6, 6 + SHAPE_DIMS)
_ND = 6 + SHAPE_DIMS
ND_PALM, ND_ROT, ND_SHAPE = slice(_ND, _ND + 3), slice(_ND + 3, _ND + 6), slice(_ND + 6, _ND + 6 + SHAPE_DIMS)
_F = _ND + 6 + SHAPE_DIMS
BROW, MOUTH_OPEN, CHEEKS, HEAD = _F, _F + 1, _F + 2, slice(_F + 3, _F + 6)
"""Eyebrows (raised > 0 > furrowed), jaw opening (0-1), cheeks (puffed > 0 > pursed lips), head (yaw, pitch, roll)."""
CHANNELS = _F + 6

_FACE_LOCS = ("forehead", "temple", "eye", "nose", "mouth", "chin", "cheek", "ear", "neck")
_FRAMES = {"hold_in": 2.0, "move": 6.0, "hold_out": 1.5, "pause": 4.0, "transition": 4.0, "rest": 7.0}
"""Frames at 25 fps for a signer of average tempo."""
_PERIODIC = ("hold", "tap", "circle", "shake", "zigzag", "wiggle")


def _frames(name: str, tempo: float, fps: float) -> int:
    return max(1, round(_FRAMES[name] * fps / 25.0 / tempo))


def _mirror_x(p: np.ndarray) -> np.ndarray:
    return np.asarray(p * np.array([-1.0, 1.0, 1.0]))


def _place(spec: SignSpec, token: Token, signer: Signer) -> np.ndarray:
    """The palm-centre location of a sign for this signer."""
    if spec.location == "locus":
        locus = np.array(LOCI[token.locus or "c"], dtype=float)
        if token.gloss == "IX":  # the finger points at the locus from in front of the body
            return np.asarray(0.55 * locus + 0.45 * np.array([-8.0, 12.0, -20.0]))
        return np.asarray(locus * signer.space + np.array(spec.offset))
    loc = np.array(LOCATIONS[spec.location], dtype=float)
    if spec.location in _FACE_LOCS:  # follows the signer's face, not the sign space
        return np.asarray(loc * np.array([signer.head, 1.0, signer.head]) + np.array([0.0, 27.0 - signer.neck, 0.0]))
    anchor = np.array([-4.0, 14.0, -14.0])
    return np.asarray(anchor + (loc - anchor) * signer.space)


def _rest_row(signer: Signer) -> np.ndarray:
    row = np.zeros(CHANNELS)
    relaxed = np.array(HANDSHAPES["relaxed"])
    rest = np.array(REST) + np.array([-(signer.shoulder_half - 19.0), 50.0 - signer.torso, 0.0])
    row[DOM_PALM], row[ND_PALM] = rest, rest
    row[DOM_ROT], row[ND_ROT] = ORIENTATIONS["in"], ORIENTATIONS["in"]
    row[DOM_SHAPE], row[ND_SHAPE] = relaxed, relaxed
    return row


def _shapes(spec: SignSpec, s: np.ndarray, lax: float, phase: float = 0.0) -> np.ndarray:
    """Hand-shape vectors [n, 7] along the movement: opening, closing and wiggling change them."""
    target, fist = np.array(HANDSHAPES[spec.shape]), np.array(HANDSHAPES["S"])
    w = s[:, None] % 1.0
    if spec.movement == "open":
        out = fist + (target - fist) * np.clip(w * 1.6, 0, 1)
    elif spec.movement == "close":
        out = target + (fist - target) * np.clip(w * 1.6, 0, 1)
    else:
        out = np.repeat(target[None], len(s), 0)
    if spec.movement == "wiggle":
        out[:, :4] += 0.3 * np.sin(2 * np.pi * (2 * s[:, None] + phase + np.arange(4) * 0.25))
    return np.asarray((1 - lax) * np.clip(out, -0.3, 1.0) + lax * np.array(HANDSHAPES["relaxed"]))


def sign_segment(token: Token, spec: SignSpec, signer: Signer, rng: np.random.Generator, prev: np.ndarray,
                 near_two_handed: bool, tempo: float, fps: float) -> np.ndarray:
    """The control tracks [n, CHANNELS] of one sign; ``prev`` is the row before it (hands the sign leaves alone)."""
    tempo *= float(rng.uniform(0.85, 1.18))  # signs are not all stretched alike
    n_in, n_out = _frames("hold_in", tempo, fps), _frames("hold_out", tempo, fps)
    n_move = _frames("move", tempo, fps) * spec.reps * (2 if token.gloss == "IX" else 3) // 3
    n_out += _frames("pause", tempo, fps) if token.pause else 0
    n = n_in + n_move + n_out
    s = np.concatenate([np.zeros(n_in), np.linspace(0, 1, n_move) * spec.reps, np.full(n_out, float(spec.reps))])
    if spec.movement not in _PERIODIC and spec.reps > 1:  # a repeated straight movement goes back and forth
        s = 1.0 - np.abs(1.0 - s % 2.0)
    s_path = s if spec.movement in _PERIODIC else np.clip(s, 0, 1)
    place = _place(spec, token, signer) + rng.normal(0.0, 1.2, 3)
    orient = np.array(ORIENTATIONS[spec.orientation], dtype=float) + rng.normal(0.0, 5.0, 3)
    lax = signer.laxness
    rows = np.repeat(prev[None], n, 0)
    rows[:, DOM_PALM] = place + movement_path(spec.movement, s_path) * signer.space
    rows[:, DOM_ROT] = orient
    if spec.movement == "twist":
        rows[:, DOM_ROT.start + 2] += 70.0 * np.clip(s, 0, 1)
    rows[:, DOM_SHAPE] = _shapes(spec, s, lax)
    if spec.hands in ("sym", "alt"):
        shift = 0.5 if spec.hands == "alt" else 0.0
        s_nd = s + shift if spec.movement in _PERIODIC else s_path
        rows[:, ND_PALM] = place + movement_path(spec.movement, s_nd) * signer.space
        rows[:, ND_ROT] = rows[:, DOM_ROT]
        rows[:, ND_SHAPE] = _shapes(spec, s, lax, shift)
    elif spec.hands == "base":
        base = place - np.array(spec.offset) + np.array([2.0, 5.0, 0.0])  # under the acting hand, nearer the middle
        rows[:, ND_PALM] = _mirror_x(base)
        rows[:, ND_ROT] = ORIENTATIONS["up"] if spec.base_shape in ("B", "5") else ORIENTATIONS["in"]
        rows[:, ND_SHAPE] = (1 - lax) * np.array(HANDSHAPES[spec.base_shape]) + lax * np.array(HANDSHAPES["relaxed"])
    else:  # the idle hand rests, or waits in front when a two-handed sign is next to this one
        idle = _rest_row(signer)
        rows[:, ND_PALM] = np.array(HOVER) if near_two_handed else idle[ND_PALM]
        rows[:, ND_ROT], rows[:, ND_SHAPE] = idle[ND_ROT], idle[ND_SHAPE]
    rows[:, ND_PALM] += rng.normal(0.0, 0.8, 3)
    ex = signer.expressive
    rows[:, BROW] = (1.0 if token.topic else 0.0) * ex + rng.normal(0.0, 0.05)
    mouth = token.mouth if token.mouth != "none" else spec.mouth
    rows[:, CHEEKS] = {"puff": 1.0, "purse": -1.0}.get(mouth, 0.0) * ex
    # Mouthing: the lips move while signing, and an "open" sign drops the jaw.
    rows[:, MOUTH_OPEN] = (0.6 if mouth == "open" else 0.12 * np.abs(np.sin(np.pi * s * 2.5))) * ex
    rows[:, HEAD] = rng.normal(0.0, 1.0, 3) + (np.array([0.0, -8.0, 4.0]) * ex if token.topic else 0.0)
    if token.nod:
        k = min(n, n_out + n_move // 2)
        rows[n - k:, HEAD.start + 1] += 12.0 * ex * np.sin(np.linspace(0, np.pi, k))
    return rows


def _min_jerk(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """``n`` rows strictly between ``a`` and ``b`` on a minimum-jerk profile."""
    t = np.arange(1, n + 1) / (n + 1)
    w = 10 * t**3 - 15 * t**4 + 6 * t**5
    return np.asarray(a[None] + (b - a)[None] * w[:, None])


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along time with edge padding."""
    r = max(1, int(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    pad = np.concatenate([np.repeat(x[:1], r, 0), x, np.repeat(x[-1:], r, 0)])
    out = np.zeros_like(x, dtype=float)
    for j, w in enumerate(k):  # a weighted sum of shifted copies: every channel at once
        out += w * pad[j:j + len(x)]
    return out


def articulate(tokens: list[Token], lexicon: dict[str, SignSpec], signer: Signer, rng: np.random.Generator,
               fps: float = 25.0) -> np.ndarray:
    """The control tracks [T, CHANNELS] of a sentence, from rest to rest."""
    tempo = signer.speed * float(rng.uniform(0.9, 1.1))  # the same signer is not equally fast every time
    rest = _rest_row(signer)
    two = [lexicon[t.gloss].hands != "one" for t in tokens]
    parts = [np.repeat(rest[None], _frames("rest", tempo, fps), 0)]
    for i, token in enumerate(tokens):
        near = any(two[max(0, i - 1): i + 2])
        seg = sign_segment(token, lexicon[token.gloss], signer, rng, parts[-1][-1], near, tempo, fps)
        n_tr = _frames("transition", tempo, fps) + (2 if i == 0 else 0)
        parts += [_min_jerk(parts[-1][-1], seg[0], n_tr), seg]
    parts += [_min_jerk(parts[-1][-1], rest, _frames("transition", tempo, fps) + 2),
              np.repeat(rest[None], _frames("rest", tempo, fps), 0)]
    return _blur(np.concatenate(parts), sigma=1.2 * fps / 25.0)
