"""Pose perturbations for SONAR-SLT's coupled augmentation (speed, affine, keypoint jitter, frame drop, an occluded
hand) and the pipeline that turns a pose file into model input, augmented in training.

Coupled: the datamodule pairs each perturbed clip with a translation drawn afresh every time (the multilingual
targets), so neither the motion nor the target text repeats exactly across epochs.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from vision.sign.pose_io import (
    DEFAULT_FPS,
    LEFT_HAND,
    RIGHT_HAND,
    PoseClip,
    load_normalised,
    retime,
    to_features,
)


@dataclass
class PoseAugmentConfig:
    """How strongly each perturbation acts; 0 switches one off."""

    speed: float = 0.2
    """Play speed drawn from [1 - speed, 1 + speed]."""
    rotate_deg: float = 10.0
    """In-plane rotation drawn from [-rotate_deg, rotate_deg] degrees."""
    scale: float = 0.1
    """Zoom drawn from [1 - scale, 1 + scale], per axis independently by up to half as much again."""
    shear: float = 0.1
    """Horizontal shear drawn from [-shear, shear]."""
    shift: float = 0.1
    """Translation drawn from [-shift, shift] shoulder widths in x and y."""
    jitter: float = 0.01
    """Standard deviation of Gaussian noise on every coordinate, in shoulder widths."""
    frame_drop: float = 0.1
    """Probability that each frame is dropped (at least one frame is kept)."""
    occlude_hand: float = 0.15
    """Probability that one hand, chosen at random, is missing for a random stretch of the clip."""


def perturb(clip: PoseClip, cfg: PoseAugmentConfig, rng: np.random.Generator) -> PoseClip:
    """``clip`` (normalised) with every perturbation of ``cfg`` drawn once from ``rng``."""
    if cfg.speed > 0:
        clip = retime(clip, float(rng.uniform(1 - cfg.speed, 1 + cfg.speed)))
    xyz, conf = clip.xyz.copy(), clip.conf.copy()
    angle = math.radians(float(rng.uniform(-cfg.rotate_deg, cfg.rotate_deg)))
    zoom = float(rng.uniform(1 - cfg.scale, 1 + cfg.scale))
    sx, sy = zoom * rng.uniform(1 - cfg.scale / 2, 1 + cfg.scale / 2, size=2)
    c, s = math.cos(angle), math.sin(angle)
    k = float(rng.uniform(-cfg.shear, cfg.shear))
    m = np.array([[c, -s], [s, c]]) @ np.array([[1.0, k], [0.0, 1.0]]) @ np.diag([sx, sy])  # [2, 2]
    shift = rng.uniform(-cfg.shift, cfg.shift, size=2) if cfg.shift > 0 else np.zeros(2)
    # Written out per coordinate: a [T, 543, 2] @ [2, 2] matmul on a strided view costs several times more.
    x, y = xyz[..., 0].copy(), xyz[..., 1].copy()  # [T, P]
    xyz[..., 0] = np.float32(m[0, 0]) * x + np.float32(m[0, 1]) * y + np.float32(shift[0])
    xyz[..., 1] = np.float32(m[1, 0]) * x + np.float32(m[1, 1]) * y + np.float32(shift[1])
    xyz[..., 2] *= np.float32(zoom)
    if cfg.jitter > 0:  # float32 draws: half the time of float64 ones
        xyz += np.float32(cfg.jitter) * rng.standard_normal(xyz.shape, dtype=np.float32)
    if cfg.frame_drop > 0 and len(xyz) > 1:
        keep = rng.random(len(xyz)) >= cfg.frame_drop
        if not keep.any():
            keep[rng.integers(len(xyz))] = True
        xyz, conf = xyz[keep], conf[keep]
    if cfg.occlude_hand > 0 and rng.random() < cfg.occlude_hand:
        hand = LEFT_HAND if rng.random() < 0.5 else RIGHT_HAND
        t = len(xyz)
        length = int(rng.integers(max(1, t // 4), t + 1))
        start = int(rng.integers(0, t - length + 1))
        conf[start : start + length, hand] = 0.0
        xyz[start : start + length, hand] = np.nan
    # Missing points stay NaN with confidence 0 through every step above, so no clean() pass is needed.
    return PoseClip(xyz, conf, clip.fps)


class PosePipeline:
    """Pose file -> model input ``[T, 543, 4]``: read, normalise, resample to ``fps``, perturb when given a
    random generator (training), cut to ``max_frames``.

    The datamodule (which may not import a family) receives it from the data config.
    """

    def __init__(self, augment: PoseAugmentConfig | dict[str, Any] | None = None, fps: float = DEFAULT_FPS,
                 max_frames: int = 400):
        if isinstance(augment, PoseAugmentConfig):
            augment = asdict(augment)
        self.augment = PoseAugmentConfig(**augment) if augment is not None else None
        self.fps = fps
        self.max_frames = max_frames

    def load(self, path: str | os.PathLike[str], file_fps: float | None = None) -> PoseClip:
        """The normalised clip of a ``.npy`` or ``.pose`` file at ``fps``; ``file_fps`` is a ``.npy`` file's own
        frame rate (a manifest's ``fps``; default 25). ``PoseError`` names the file if it can't be used."""
        return load_normalised(path, self.fps, file_fps or DEFAULT_FPS)

    def __call__(self, clip: PoseClip, rng: np.random.Generator | None = None) -> np.ndarray:
        """Features of a normalised clip; perturbed when ``rng`` is given and augmentation is configured."""
        if rng is not None and self.augment is not None:
            clip = perturb(clip, self.augment, rng)
        if len(clip) > self.max_frames:  # evenly spaced frames keep the whole sentence
            idx = np.linspace(0, len(clip) - 1, self.max_frames).round().astype(int)
            clip = PoseClip(clip.xyz[idx], clip.conf[idx], clip.fps)
        return to_features(clip)
