"""Draw MediaPipe Holistic pose sequences (543 points): skeleton frames as a PNG strip or an animated GIF.

Used by scripts/render_pose.py and the web app's sign tab. Points are in normalised image coordinates; lost points
(NaN or confidence 0) are not drawn.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from common.io import atomic_open
from datamodules.corpus.sign_io import read_pose
from datamodules.corpus.sign_layout import (
    FACE_START,
    HAND_LIMBS,
    LEFT_HAND_START,
    POINTS,
    RIGHT_HAND_START,
    face_limbs,
)

BODY_LIMBS = ((11, 12), (11, 13), (13, 15), (12, 14), (14, 16), (11, 23), (12, 24), (23, 24))
"""Upper-body pose limbs (the hands and face are drawn from their own components)."""
STYLE = {"body": ("#444444", 2.0), "face": ("#999999", 0.7), "left": ("#1f5fd6", 1.2), "right": ("#d62f1f", 1.2)}
"""Part -> (colour, line width); left and right are the signer's."""


def load(path: str | os.PathLike[str]) -> tuple[np.ndarray, float | None]:
    """Points [T, 543, 3] (NaN where lost) and the frame aspect if the file knows it; ``ValueError`` naming the
    file when it can't be drawn."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{path}: no such file")
    if p.suffix == ".pose":
        try:
            xyz, _, _, aspect = read_pose(p)
        except Exception as e:  # pose-format raises assorted errors on a damaged file
            raise ValueError(f"{path}: not a readable .pose file ({e})") from e
        return xyz, aspect
    try:
        arr = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(f"{path}: not a readable .npy file ({e})") from e
    if arr.ndim != 3 or arr.shape[1] != POINTS or arr.shape[2] not in (3, 4) or len(arr) == 0:
        raise ValueError(f"{path}: expected a non-empty [T, {POINTS}, 3 or 4] array, got {list(arr.shape)}")
    xyz = arr[..., :3].astype(np.float32).copy()
    if arr.shape[2] == 4:
        xyz[arr[..., 3] <= 0] = np.nan
    return xyz, None


def _segments(start: int, limbs: list[tuple[int, int]] | tuple[tuple[int, int], ...]) -> list[tuple[int, int]]:
    return [(start + a, start + b) for a, b in limbs]


PARTS = {"body": _segments(0, BODY_LIMBS), "face": _segments(FACE_START, face_limbs()),
         "left": _segments(LEFT_HAND_START, HAND_LIMBS), "right": _segments(RIGHT_HAND_START, HAND_LIMBS)}


def draw(ax: Axes, frame: np.ndarray, aspect: float, box: tuple[float, float, float, float]) -> None:
    """One skeleton frame [543, 3] on ``ax``, x scaled by the frame aspect so proportions are true."""
    xy = frame[:, :2] * np.array([aspect, 1.0])
    for part, segs in PARTS.items():
        colour, width = STYLE[part]
        lines = xy[np.array(segs)]  # [limbs, 2 ends, 2]
        lines = lines[~np.isnan(lines).any(axis=(1, 2))]
        ax.add_collection(LineCollection(list(lines), colors=colour, linewidths=width, capstyle="round"))
    x0, x1, y0, y1 = box
    ax.set_xlim(x0, x1)
    ax.set_ylim(y1, y0)  # image y grows downwards
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def bounding_box(seqs: list[np.ndarray], aspect: float) -> tuple[float, float, float, float]:
    """One box around every drawn point of every sequence, so rows compare at the same scale."""
    pts = np.concatenate([s[:, :FACE_START + 468].reshape(-1, 3) for s in seqs]
                         + [s[:, LEFT_HAND_START:].reshape(-1, 3) for s in seqs])
    pts = pts[~np.isnan(pts[:, 0])]
    if not len(pts):
        return 0.0, aspect, 0.0, 1.0
    x, y = np.clip(pts[:, 0], 0, 1) * aspect, np.clip(pts[:, 1], 0, 1)
    pad = 0.03
    return float(x.min()) - pad, float(x.max()) + pad, float(y.min()) - pad, float(y.max()) + pad


def strip(seqs: list[np.ndarray], titles: list[str], aspect: float, frames: int, inches: float) -> Figure:
    """A figure with one row per sequence and ``frames`` evenly spaced frames per row."""
    box = bounding_box(seqs, aspect)
    ratio = (box[1] - box[0]) / (box[3] - box[2])
    fig, axes = plt.subplots(len(seqs), frames, figsize=(frames * inches * ratio, len(seqs) * (inches + 0.3)),
                             squeeze=False)
    for row, (seq, title) in enumerate(zip(seqs, titles)):
        picks = np.linspace(0, len(seq) - 1, frames).round().astype(int)
        for col, t in enumerate(picks):
            ax = axes[row, col]
            draw(ax, seq[t], aspect, box)
            ax.set_title(f"{title} t={t}" if col == 0 else f"t={t}", fontsize=7, loc="left")
    fig.tight_layout()
    return fig


def save_gif(seq: np.ndarray, aspect: float, path: str | os.PathLike[str], fps: float = 25.0,
             inches: float = 3.0) -> None:
    """Every frame of ``seq`` as an animated GIF."""
    from PIL import Image

    box = bounding_box([seq], aspect)
    ratio = (box[1] - box[0]) / (box[3] - box[2])
    fig, ax = plt.subplots(figsize=(inches * ratio, inches))
    images = []
    for frame in seq:
        ax.clear()
        draw(ax, frame, aspect, box)
        fig.canvas.draw()
        images.append(Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3]).convert("P"))  # type: ignore[attr-defined]
    plt.close(fig)
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    with atomic_open(path, "wb") as f:
        f.write(buf.getvalue())
