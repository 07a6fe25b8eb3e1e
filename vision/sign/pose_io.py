"""Pose keypoint sequences in the MediaPipe Holistic layout: read ``.npy`` and ``.pose`` files, write ``.pose``,
and normalise (centre on the shoulders, scale by shoulder width) with missing points handled.

Layout: 33 body + 468 face + 21 left hand + 21 right hand = 543 points, (x, y, z) in normalised image coordinates
and a confidence in [0, 1]; a missing point has NaN coordinates and confidence 0. A ``.npy`` holds float32
``[T, 543, 4]`` (x, y, z, confidence); a ``.pose`` file (the pose-format library) holds the four holistic
components, in pixels of its header's width and height, which reading divides out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

N_BODY, N_FACE, N_HAND = 33, 468, 21
N_POINTS = N_BODY + N_FACE + 2 * N_HAND
BODY = slice(0, N_BODY)
FACE = slice(N_BODY, N_BODY + N_FACE)
LEFT_HAND = slice(N_BODY + N_FACE, N_BODY + N_FACE + N_HAND)
RIGHT_HAND = slice(N_BODY + N_FACE + N_HAND, N_POINTS)
LEFT_SHOULDER, RIGHT_SHOULDER = 11, 12
"""MediaPipe pose landmark indices of the shoulders."""
DEFAULT_FPS = 25.0
SUFFIXES = (".npy", ".pose")

# pose-format component names of MediaPipe Holistic, in the suite's order, with their point counts.
COMPONENTS = (("POSE_LANDMARKS", N_BODY), ("FACE_LANDMARKS", N_FACE), ("LEFT_HAND_LANDMARKS", N_HAND),
              ("RIGHT_HAND_LANDMARKS", N_HAND))
PIXELS = 1000
"""Width and height of the frame that ``write_pose_file`` declares (coordinates are stored in its pixels)."""


class PoseError(ValueError):
    """A pose file that can't be used; the message names the file and the reason."""


@dataclass
class PoseClip:
    """One keypoint sequence."""

    xyz: np.ndarray
    """float32 ``[T, 543, 3]``; NaN where a point is missing."""
    conf: np.ndarray
    """float32 ``[T, 543]`` in [0, 1]; 0 where a point is missing."""
    fps: float = DEFAULT_FPS
    """Frames per second."""

    def __len__(self) -> int:
        return int(self.xyz.shape[0])


def from_array(arr: np.ndarray, fps: float = DEFAULT_FPS, where: str = "array") -> PoseClip:
    """A clip from ``[T, 543, 4]`` (x, y, z, confidence) or ``[T, 543, 3]`` (confidence 1 where finite)."""
    arr = np.asarray(arr)
    if arr.ndim != 3 or arr.shape[1] != N_POINTS or arr.shape[2] not in (3, 4):
        raise PoseError(f"{where}: expected a [T, {N_POINTS}, 4] (or 3) keypoint array, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise PoseError(f"{where}: empty pose sequence (0 frames)")
    if not np.issubdtype(arr.dtype, np.floating):
        raise PoseError(f"{where}: expected float keypoints, got dtype {arr.dtype}")
    xyz = arr[..., :3].astype(np.float32)
    conf = arr[..., 3].astype(np.float32) if arr.shape[2] == 4 else np.ones(arr.shape[:2], np.float32)
    return clean(PoseClip(xyz, conf, float(fps)))


def clean(clip: PoseClip) -> PoseClip:
    """Missing means NaN coordinates and confidence 0, whichever of the two the source marked."""
    conf = np.nan_to_num(clip.conf, nan=0.0).clip(0.0, 1.0)
    missing = ~np.isfinite(clip.xyz).all(-1) | (conf <= 0)  # [T, P]
    xyz = clip.xyz.copy()
    xyz[missing] = np.nan
    conf = np.where(missing, 0.0, conf).astype(np.float32)
    return PoseClip(xyz, conf, clip.fps)


def read_npy(path: str | os.PathLike[str], fps: float = DEFAULT_FPS) -> PoseClip:
    """A ``[T, 543, 4]`` float32 ``.npy`` file (pickles refused)."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise PoseError(f"{path}: unreadable .npy ({e})") from None
    return from_array(arr, fps, str(path))


def read_pose_file(path: str | os.PathLike[str]) -> PoseClip:
    """A pose-format ``.pose`` file with the four holistic components (extra components are ignored)."""
    from pose_format import Pose

    try:
        pose = Pose.read(Path(path).read_bytes())
    except Exception as e:  # pose-format raises anything from struct errors to IndexError
        raise PoseError(f"{path}: unreadable .pose file ({type(e).__name__}: {e})") from None
    header, body = pose.header, pose.body
    data = np.asarray(body.data.filled(np.nan) if np.ma.isMaskedArray(body.data) else body.data, np.float32)
    conf = np.asarray(body.confidence, np.float32)
    if data.ndim != 4 or data.shape[0] == 0:
        raise PoseError(f"{path}: empty pose sequence (data shape {data.shape})")
    offsets, start = {}, 0
    for comp in header.components:
        offsets[comp.name] = (start, len(comp.points))
        start += len(comp.points)
    parts_xyz, parts_conf = [], []
    for name, n in COMPONENTS:
        if name not in offsets or offsets[name][1] < n:
            raise PoseError(f"{path}: no {name} component with {n} points (has "
                            f"{', '.join(f'{k}[{v[1]}]' for k, v in offsets.items())})")
        s = offsets[name][0]
        parts_xyz.append(data[:, 0, s : s + n, :3])
        parts_conf.append(conf[:, 0, s : s + n])
    xyz = np.concatenate(parts_xyz, axis=1)  # [T, 543, D<=3]
    if xyz.shape[-1] < 3:  # a 2-D pose file: z unknown, taken as 0
        xyz = np.concatenate([xyz, np.zeros((*xyz.shape[:2], 3 - xyz.shape[-1]), np.float32)], -1)
    dims = header.dimensions
    scale = np.array([dims.width or 1, dims.height or 1, dims.width or 1], np.float32)
    return clean(PoseClip(xyz / scale, np.concatenate(parts_conf, axis=1), float(body.fps or DEFAULT_FPS)))


def read_clip(path: str | os.PathLike[str], fps: float = DEFAULT_FPS) -> PoseClip:
    """A ``.npy`` or ``.pose`` file, chosen by its suffix."""
    p = Path(path)
    if not p.is_file():
        raise PoseError(f"{p}: no such pose file")
    if p.suffix.lower() == ".pose":
        return read_pose_file(p)
    if p.suffix.lower() == ".npy":
        return read_npy(p, fps)
    raise PoseError(f"{p}: unknown pose file type {p.suffix!r} (expected {' or '.join(SUFFIXES)})")


def write_pose_file(clip: PoseClip, path: str | os.PathLike[str]) -> Path:
    """Write ``clip`` as a pose-format ``.pose`` file with the holistic components (atomically)."""
    from pose_format import Pose
    from pose_format.numpy.pose_body import NumPyPoseBody
    from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions

    from common.io import atomic_open

    comps = [PoseHeaderComponent(name, [f"{name}_{i}" for i in range(n)], [], [], "XYZC") for name, n in COMPONENTS]
    header = PoseHeader(0.1, PoseHeaderDimensions(PIXELS, PIXELS, PIXELS), comps)
    data = np.nan_to_num(clip.xyz * PIXELS, nan=0.0)[:, None]  # [T, 1, 543, 3]
    mask = np.repeat((clip.conf <= 0)[:, None, :, None], 3, axis=-1)
    body = NumPyPoseBody(clip.fps, np.ma.masked_array(data, mask=mask), clip.conf[:, None])
    with atomic_open(path, "wb") as f:
        Pose(header, body).write(f)
    return Path(path)


def normalise(clip: PoseClip) -> PoseClip:
    """Centre each frame on the shoulders' midpoint and divide by the clip's shoulder width.

    Frames without both shoulders take the centre of the nearest frame that has them; a clip with no visible
    shoulders at all is centred on the mean of its visible points and scaled by their spread.
    """
    xyz = clip.xyz
    both = (clip.conf[:, LEFT_SHOULDER] > 0) & (clip.conf[:, RIGHT_SHOULDER] > 0)  # [T]
    if both.any():
        mid = 0.5 * (xyz[:, LEFT_SHOULDER] + xyz[:, RIGHT_SHOULDER])  # [T, 3]
        width = np.linalg.norm(xyz[both, LEFT_SHOULDER, :2] - xyz[both, RIGHT_SHOULDER, :2], axis=-1)
        scale = float(np.median(width))
        have = np.flatnonzero(both)
        nearest = have[np.abs(np.arange(len(xyz))[:, None] - have[None, :]).argmin(1)]  # [T]
        centre = mid[nearest]
    else:
        visible = xyz[clip.conf > 0]  # [N, 3]
        if len(visible) == 0:
            return PoseClip(xyz.copy(), clip.conf.copy(), clip.fps)  # nothing seen: every point stays missing
        centre = np.broadcast_to(visible.mean(0), (len(xyz), 3))
        scale = float(np.std(visible[:, :2])) * 2
    scale = scale if np.isfinite(scale) and scale > 1e-6 else 1.0
    return PoseClip(((xyz - centre[:, None, :]) / scale).astype(np.float32), clip.conf.copy(), clip.fps)


def retime(clip: PoseClip, factor: float) -> PoseClip:
    """The clip played ``factor`` times as fast (linear interpolation; a point missing at either neighbour stays
    missing). ``clip`` must be clean (``clean``), as every reader returns it."""
    t = len(clip)
    n = max(1, round(t / factor))
    if n == t:
        return clip
    pos = np.linspace(0, t - 1, n) if n > 1 else np.zeros(1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, t - 1)
    w = (pos - lo).astype(np.float32)[:, None]  # [n, 1]
    xyz = clip.xyz[lo] * (1 - w[..., None]) + clip.xyz[hi] * w[..., None]  # NaN at either side stays NaN
    conf = np.minimum(clip.conf[lo], clip.conf[hi])
    # A clean clip stays clean (a missing neighbour gives NaN and confidence 0 together), so no clean() pass.
    return PoseClip(xyz.astype(np.float32, copy=False), conf.astype(np.float32, copy=False), clip.fps)


def load_normalised(path: str | os.PathLike[str], fps: float = DEFAULT_FPS,
                    file_fps: float = DEFAULT_FPS) -> PoseClip:
    """A pose file, normalised and resampled to ``fps`` frames a second; ``file_fps`` is a ``.npy`` file's own rate
    (a ``.pose`` file records its own)."""
    clip = normalise(read_clip(path, file_fps))
    if abs(clip.fps - fps) > 1e-3:
        clip = retime(clip, clip.fps / fps)
        clip.fps = fps
    return clip


def to_features(clip: PoseClip) -> np.ndarray:
    """Model input ``[T, 543, 4]`` of a normalised clip: coordinates (0 where missing) and the confidence."""
    xyz = np.nan_to_num(clip.xyz, nan=0.0, posinf=0.0, neginf=0.0).clip(-10, 10)
    return np.concatenate([xyz, clip.conf[..., None]], axis=-1).astype(np.float32)


def features(clip: PoseClip) -> np.ndarray:
    """``to_features(normalise(clip))``: a raw clip as model input."""
    return to_features(normalise(clip))
