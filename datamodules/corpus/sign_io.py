"""Writers of the sign corpus's pose files: ``.npy`` [T, 543, 4] and pose-format ``.pose``, both atomic."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from common.io import atomic_open
from datamodules.corpus.sign_layout import COMPONENTS, HAND_LIMBS, HAND_NAMES, POSE_LIMBS, POSE_NAMES, face_limbs


def to_array(xyz: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """x, y, z and confidence as one float32 array [T, 543, 4] (the ``.npy`` form)."""
    return np.concatenate([xyz, conf[..., None]], -1).astype(np.float32)


def write_npy(path: str | os.PathLike[str], xyz: np.ndarray, conf: np.ndarray) -> None:
    """Write [T, 543, 4] float32 (x, y, z in normalised image coordinates, confidence)."""
    with atomic_open(path, "wb") as f:
        np.save(f, to_array(xyz, conf), allow_pickle=False)


def _pose_format() -> Any:
    try:
        import pose_format
    except ImportError as e:
        raise ImportError("writing .pose files needs the pose-format library: pip install '.[sign]'") from e
    return pose_format


def holistic_header(width: int, height: int) -> Any:
    """A pose-format header with the four Holistic components (x, y, z, confidence)."""
    _pose_format()
    from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions

    names = {"POSE_LANDMARKS": list(POSE_NAMES), "FACE_LANDMARKS": [str(i) for i in range(468)],
             "LEFT_HAND_LANDMARKS": list(HAND_NAMES), "RIGHT_HAND_LANDMARKS": list(HAND_NAMES)}
    limbs = {"POSE_LANDMARKS": list(POSE_LIMBS), "FACE_LANDMARKS": face_limbs(),
             "LEFT_HAND_LANDMARKS": list(HAND_LIMBS), "RIGHT_HAND_LANDMARKS": list(HAND_LIMBS)}
    colour = {"POSE_LANDMARKS": (255, 0, 0), "FACE_LANDMARKS": (128, 128, 128), "LEFT_HAND_LANDMARKS": (0, 0, 255),
              "RIGHT_HAND_LANDMARKS": (0, 160, 0)}
    comps = [PoseHeaderComponent(name, names[name], limbs[name], [colour[name]] * len(limbs[name]), "XYZC")
             for name, _, _ in COMPONENTS]
    return PoseHeader(0.1, PoseHeaderDimensions(width=width, height=height, depth=1000), comps)


def write_pose(path: str | os.PathLike[str], xyz: np.ndarray, conf: np.ndarray, fps: float, width: int,
               height: int) -> None:
    """Write a ``.pose`` file: x and y in pixels of a ``width`` x ``height`` frame and z in units of the width (as
    vision/sign/pose_io.py reads them back), lost points zero with confidence 0."""
    _pose_format()
    from pose_format import Pose
    from pose_format.numpy.pose_body import NumPyPoseBody

    data = xyz * np.array([width, height, width], dtype=np.float32)
    data = np.nan_to_num(data, nan=0.0).astype(np.float32)[:, None]  # [T, people=1, 543, 3]
    body = NumPyPoseBody(fps=fps, data=data, confidence=conf.astype(np.float32)[:, None])
    with atomic_open(path, "wb") as f:
        Pose(holistic_header(width, height), body).write(f)


def read_pose(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray, float, float]:
    """A ``.pose`` file as normalised coordinates [T, 543, 3] (NaN where confidence is 0), confidences [T, 543],
    fps and frame aspect (width / height); for the corpus tests and the renderer (vision/sign reads user files
    with its own reader)."""
    _pose_format()
    from pose_format import Pose

    with open(path, "rb") as f:
        pose = Pose.read(f.read())
    dims = pose.header.dimensions
    data = np.asarray(pose.body.data.filled(np.nan) if hasattr(pose.body.data, "filled") else pose.body.data)
    conf = np.asarray(pose.body.confidence)[:, 0]
    xyz = data[:, 0] / np.array([dims.width, dims.height, dims.width])
    xyz[conf == 0] = np.nan
    return xyz.astype(np.float32), conf.astype(np.float32), float(pose.body.fps), dims.width / dims.height
