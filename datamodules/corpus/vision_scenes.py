"""Procedural scenes: sampling attribute structures with held-out colour+shape pairs, and drawing them with PIL.

A scene is plain JSON (the ``attributes`` field of the corpus): ``objects`` (shape, colour, size, texture,
position, count; distinct positions and colour+shape pairs within a scene) and ``relations`` between them
(subject, relation, ground: indices into ``objects``; grounds are single objects, as the grammar wants).
"""

from __future__ import annotations

import functools
import io
import random
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from datamodules.corpus.vision_captions import COLOURS, POSITIONS, SHAPES, SIZES, TEXTURES

RGB = {"red": (220, 35, 35), "blue": (35, 75, 215), "green": (35, 155, 60), "yellow": (240, 210, 35),
       "orange": (245, 130, 25), "purple": (140, 50, 180), "pink": (245, 135, 195), "brown": (125, 75, 35)}
CENTRES = {"left": (0.2, 0.5), "right": (0.8, 0.5), "top": (0.5, 0.2), "bottom": (0.5, 0.8), "centre": (0.5, 0.5)}
"""Region centres as fractions of the image side; regions are ~0.3 wide and do not overlap."""
RADIUS = {"big": 0.14, "small": 0.09}
"""Shape radius as a fraction of the image side, for a single object."""
COPIES = {1: [(0.0, 0.0)], 2: [(-0.08, 0.0), (0.08, 0.0)], 3: [(-0.08, 0.06), (0.08, 0.06), (0.0, -0.075)]}
"""Offsets of the copies of a counted object; copies are drawn at ``COPY_SCALE`` of the radius."""
COPY_SCALE = 0.5
COUNTS = {1: 0.6, 2: 0.25, 3: 0.15}
OBJECTS = {1: 0.2, 2: 0.35, 3: 0.25, 4: 0.2}
"""Share of scenes by number of objects."""
Pair = tuple[str, str]


def holdout_pairs(n: int, seed: int | str) -> list[Pair]:
    """``n`` colour+shape pairs kept out of training; each colour (and, for n >= 6, shape) loses at most one or two."""
    colours, shapes = list(COLOURS), list(SHAPES)
    rng = random.Random(f"{seed}:holdout")
    rng.shuffle(colours)
    rng.shuffle(shapes)
    pairs = [(colours[i % len(colours)], shapes[i % len(shapes)]) for i in range(n)]
    if len(set(pairs)) != n or n >= len(COLOURS) * len(SHAPES):
        raise ValueError(f"holdout_pairs={n}: must be below {len(COLOURS) * len(SHAPES)} and distinct")
    return sorted(pairs)


def relation(a: str, b: str) -> str:
    """How region ``a`` lies relative to region ``b`` (the larger offset wins; ties are horizontal)."""
    (xa, ya), (xb, yb) = CENTRES[a], CENTRES[b]
    if abs(xa - xb) >= abs(ya - yb):
        return "left_of" if xa < xb else "right_of"
    return "above" if ya < yb else "below"


def _weighted(rng: random.Random, table: dict[int, float]) -> int:
    return rng.choices(list(table), weights=list(table.values()))[0]


def sample_scene(rng: random.Random, held_out: set[Pair], unseen: bool, max_objects: int = 4) -> dict[str, Any]:
    """One scene; ``unseen`` scenes have a held-out colour+shape pair, the others none."""
    n = min(_weighted(rng, OBJECTS), max_objects)
    positions = rng.sample(POSITIONS, n)
    seen_pairs = [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in held_out]
    pairs: list[Pair] = [rng.choice(sorted(held_out))] if unseen else []
    while len(pairs) < n:
        pair = rng.choice(seen_pairs)
        if pair not in pairs:
            pairs.append(pair)
    rng.shuffle(pairs)
    objects: list[dict[str, Any]] = [
        {"shape": s, "colour": c, "size": rng.choice(SIZES), "texture": rng.choice(TEXTURES), "position": p,
         "count": _weighted(rng, COUNTS)} for (c, s), p in zip(pairs, positions)]
    relations = []
    for i in range(n - 1):
        a, b = i, i + 1
        if objects[b]["count"] != 1:
            a, b = b, a
        if objects[b]["count"] == 1:
            relations.append({"subject": a, "relation": relation(objects[a]["position"], objects[b]["position"]),
                              "ground": b})
    return {"objects": objects, "relations": relations}


def scene_pairs(scene: dict[str, Any]) -> set[Pair]:
    """The colour+shape pairs a scene shows."""
    return {(o["colour"], o["shape"]) for o in scene["objects"]}


# ---------------------------------------------------------------- drawing


def _outline(shape: str, x: float, y: float, r: float) -> list[tuple[float, float]]:
    """Polygon of ``shape`` centred at (x, y) with radius r (the circle is drawn as an ellipse)."""
    if shape == "square":
        pts = [(-0.85, -0.85), (0.85, -0.85), (0.85, 0.85), (-0.85, 0.85)]
    elif shape == "triangle":
        pts = [(0.0, -1.0), (0.95, 0.75), (-0.95, 0.75)]
    elif shape == "diamond":
        pts = [(0.0, -1.0), (0.7, 0.0), (0.0, 1.0), (-0.7, 0.0)]
    elif shape == "cross":
        w = 0.33
        pts = [(-w, -1), (w, -1), (w, -w), (1, -w), (1, w), (w, w), (w, 1), (-w, 1), (-w, w), (-1, w), (-1, -w),
               (-w, -w)]
    elif shape == "star":
        angles = np.pi / 2 + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        pts = list(zip(np.cos(angles) * radii, -np.sin(angles) * radii))
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return [(x + float(px) * r, y + float(py) * r) for px, py in pts]


@functools.cache
def _marks(texture: str, side: int, period: int) -> Image.Image:
    """Mask of a texture's marks on a ``[side, side]`` canvas (cached: the same few patterns every image)."""
    yy, xx = np.mgrid[0:side, 0:side]
    if texture == "striped":
        marks = ((xx + yy) // max(1, period // 2)) % 2 == 1
    elif texture == "dotted":
        p = round(period * 1.4)  # sparser than the stripes, so dots don't read as a grid
        marks = ((xx % p - p / 2) ** 2 + (yy % p - p / 2) ** 2) < (p * 0.25) ** 2
    elif texture == "checked":
        marks = ((xx // period) + (yy // period)) % 2 == 1
    else:
        marks = np.zeros((side, side), bool)
    return Image.fromarray(marks.astype(np.uint8) * 255, mode="L")


def _pattern(texture: str, colour: tuple[int, int, int], side: int, period: int) -> Image.Image:
    """A ``side`` square fill: the colour, with dark or light marks for textured objects."""
    out = Image.new("RGB", (side, side), colour)
    if texture != "solid":
        luminance = 0.3 * colour[0] + 0.59 * colour[1] + 0.11 * colour[2]
        out.paste((30, 30, 30) if luminance > 140 else (250, 250, 250), (0, 0, side, side),
                  _marks(texture, side, period))
    return out


def render(scene: dict[str, Any], size: int, seed: int | str, supersample: int = 2) -> Image.Image:
    """An RGB image of ``scene``, ``size`` pixels square; drawn at ``supersample`` times and shrunk (antialiasing)."""
    rng = random.Random(f"{seed}:render")
    side = size * supersample
    grey = rng.randint(200, 240)
    bg = tuple(min(255, max(0, grey + rng.randint(-12, 12))) for _ in range(3))
    img = Image.new("RGB", (side, side), bg)
    for o in scene["objects"]:
        cx, cy = CENTRES[o["position"]]
        cx, cy = cx + rng.uniform(-0.02, 0.02), cy + rng.uniform(-0.02, 0.02)
        radius = RADIUS[o["size"]] * (1.0 if o["count"] == 1 else COPY_SCALE)
        jitter = np.clip(np.array(RGB[o["colour"]]) + rng.randint(-15, 15), 0, 255)
        period = max(6, round(0.45 * radius * side))  # about four marks across any shape, big or small
        fill = _pattern(o["texture"], (int(jitter[0]), int(jitter[1]), int(jitter[2])), side, period)
        mask = Image.new("L", (side, side), 0)
        draw = ImageDraw.Draw(mask)
        for dx, dy in COPIES[o["count"]]:
            x, y, r = (cx + dx) * side, (cy + dy) * side, radius * side
            if o["shape"] == "circle":
                draw.ellipse([x - r, y - r, x + r, y + r], fill=255)
            else:
                draw.polygon(_outline(o["shape"], x, y, r), fill=255)
        img.paste(fill, (0, 0), mask)
    return img.resize((size, size), Image.Resampling.BOX) if supersample > 1 else img


def png_bytes(img: Image.Image) -> bytes:
    """PNG encoding of ``img``."""
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()
