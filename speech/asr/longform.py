"""Long audio in bounded memory: stream the file, cut it into windows at pauses, stitch their CTC log-probs."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch
from torch import Tensor

from speech.audio import SAMPLE_RATE, SILENCE_PEAK, AudioError
from text.char_vocab import SPACE, CharVocab

BLOCK_SECONDS = 10.0
"""Audio read from disk per step while streaming."""


@dataclass
class WindowConfig:
    """How a long input is cut into windows for the encoder."""

    chunk_seconds: float = 30.0
    """Longest window; inputs up to this length run in one piece."""
    overlap_seconds: float = 4.0
    """Context shared by two windows where a cut falls in speech (no pause); half on each side."""
    window_batch: int = 2
    """Windows run through the model together."""
    min_pause_seconds: float = 0.25
    """Shortest pause a window may end in; 0 never looks for pauses."""
    pause_db: float = 35.0
    """A frame this many dB below the loudest so far counts as pause."""
    min_segment_seconds: float = 1.0
    """A window runs at least this long before a pause may end it."""
    pause_margin_seconds: float = 0.08
    """Pause kept at each side of a cut; the model was trained on clips with little silence around."""

    def __post_init__(self) -> None:
        if self.chunk_seconds <= 0 or not 0 <= self.overlap_seconds < self.chunk_seconds / 2:
            raise ValueError(f"need chunk_seconds > 0 and 0 <= overlap_seconds < chunk_seconds / 2, "
                             f"got {self.chunk_seconds} and {self.overlap_seconds}")


def probe_duration(path: str | os.PathLike[str]) -> float | None:
    """Seconds from the file header (soundfile, else ffprobe), or None when neither can tell."""
    try:
        info = sf.info(str(path))
        if info.frames > 0:
            return float(info.frames) / float(info.samplerate)
    except Exception:
        pass
    if shutil.which("ffprobe") is None:
        return None
    cmd = ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.strip()
        return float(out) if out and out != "N/A" else None
    except (subprocess.SubprocessError, ValueError, OSError):
        return None


def _soundfile_blocks(path: str, block: int) -> Iterator[np.ndarray]:
    info = sf.info(path)
    stream = soxr.ResampleStream(info.samplerate, SAMPLE_RATE, 1, dtype="float32") \
        if info.samplerate != SAMPLE_RATE else None
    native = max(1, int(block * info.samplerate / SAMPLE_RATE))
    pending: np.ndarray | None = None
    for data in sf.blocks(path, blocksize=native, dtype="float32", always_2d=True):  # [n, C]
        if pending is not None:
            yield pending if stream is None else stream.resample_chunk(pending, last=False)
        pending = data.mean(axis=1).astype(np.float32)
    if pending is not None:
        yield pending if stream is None else stream.resample_chunk(pending, last=True)


def _ffmpeg_blocks(path: str, block: int) -> Iterator[np.ndarray]:
    """Decode any format ffmpeg knows to 16 kHz mono through a pipe, one block at a time."""
    if shutil.which("ffmpeg") is None:
        raise AudioError(path, "unreadable audio (not a soundfile format and ffmpeg is not installed)")
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-f", "f32le", "-ac", "1", "-ar", str(SAMPLE_RATE),
           "pipe:1"]
    with tempfile.TemporaryFile() as err, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err) as proc:
        assert proc.stdout is not None
        try:
            while data := proc.stdout.read(block * 4):
                yield np.frombuffer(data[: len(data) // 4 * 4], dtype="<f4").copy()
        finally:
            proc.stdout.close()
            code = proc.wait()
        if code != 0:
            err.seek(0)
            lines = err.read().decode("utf-8", "replace").strip().splitlines()
            raise AudioError(path, f"unreadable audio (ffmpeg: {lines[-1] if lines else f'exit code {code}'})")


def stream_audio(src: str | os.PathLike[str] | np.ndarray, name: str | None = None,
                 block_seconds: float = BLOCK_SECONDS) -> Iterator[np.ndarray]:
    """16 kHz mono float32 blocks of a file (wav/flac/... via soundfile, anything else via ffmpeg) or an array.

    Raises ``AudioError`` naming the input for unreadable, NaN-filled, empty or silent audio.
    """
    label = name or ("<array>" if isinstance(src, np.ndarray) else str(src))
    block = int(block_seconds * SAMPLE_RATE)
    if isinstance(src, np.ndarray):
        blocks: Iterable[np.ndarray] = (src[i : i + block] for i in range(0, len(src), block))
    else:
        path = str(src)
        if not Path(path).is_file():
            raise AudioError(label, "file not found" if not Path(path).exists() else "not a regular file")
        if Path(path).stat().st_size == 0:
            raise AudioError(label, "empty file (0 bytes)")
        try:
            sf.info(path)
            blocks = _soundfile_blocks(path, block)
        except sf.LibsndfileError:
            blocks = _ffmpeg_blocks(path, block)
    total, peak = 0, 0.0
    try:
        for b in blocks:
            if not np.isfinite(b).all():
                raise AudioError(label, "contains NaN or infinite samples")
            if b.size:
                total, peak = total + b.size, max(peak, float(np.abs(b).max()))
                yield np.asarray(b, dtype=np.float32)
    except AudioError as e:
        raise AudioError(label, e.reason) from None
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioError(label, f"unreadable audio ({e})") from e
    if total == 0:
        raise AudioError(label, "no audio samples (truncated or header-only file)")
    if peak < SILENCE_PEAK:
        raise AudioError(label, "silent (peak amplitude below 1e-4)")


@dataclass
class Window:
    """A stretch of audio to run through the model, and the part of its output that is kept."""

    start: int
    """Input sample of ``wave[0]``; a multiple of the model's frame stride."""
    wave: np.ndarray
    """16 kHz mono samples."""
    keep_from: int
    """First kept frame, counted over the whole input."""
    keep_to: int | None
    """End of the kept frames (exclusive) over the whole input; None for the last window (to its end)."""


def _frame_rms(wave: np.ndarray, frame: int) -> np.ndarray:
    n = len(wave) // frame
    frames = wave[: n * frame].reshape(n, frame)  # [n, frame]
    return np.sqrt(np.einsum("ij,ij->i", frames, frames) / frame)


def _first_pause(quiet: np.ndarray, min_len: int, lo: int, hi: int) -> tuple[int, int] | None:
    """Frames [start, end) of the first run of ``min_len`` or more quiet frames whose middle lies in [lo, hi)."""
    i = 0
    while i < len(quiet):
        if not quiet[i]:
            i += 1
            continue
        j = i
        while j < len(quiet) and quiet[j]:
            j += 1
        mid = (i + j) // 2
        if j - i >= min_len and lo <= mid < hi:
            return i, j
        if mid >= hi:
            return None
        i = j
    return None


def windows(blocks: Iterable[np.ndarray], frame: int, cfg: WindowConfig) -> Iterator[Window]:
    """Cut streamed audio into windows of at most ``chunk_seconds``, holding about one window in memory.

    A window ends in the first pause (``min_pause_seconds`` quieter than ``pause_db`` below the loudest
    frame so far) after ``min_segment_seconds``, keeping ``pause_margin_seconds`` of it; the next one
    starts as far before the pause ends. Such cuts need no context, and the frames in between belong
    to no window (they are blank). Without a pause a window ends at the quietest frame of its last
    third, and both neighbours then see ``overlap_seconds / 2`` of context past the cut, whose frames
    only the owning side keeps.
    """
    chunk = max(1, round(cfg.chunk_seconds * SAMPLE_RATE / frame))  # all lengths in frames of the model
    pad = round(cfg.overlap_seconds / 2 * SAMPLE_RATE / frame)
    min_pause = max(1, round(cfg.min_pause_seconds * SAMPLE_RATE / frame)) if cfg.min_pause_seconds > 0 else 0
    min_seg = min(chunk - 1, max(1, round(cfg.min_segment_seconds * SAMPLE_RATE / frame)))
    margin = round(cfg.pause_margin_seconds * SAMPLE_RATE / frame)
    source = iter(blocks)
    buf, buf0 = np.zeros(0, dtype=np.float32), 0  # buf[0] is input frame buf0
    cut, left, peak, ended = 0, 0, 0.0, False
    while True:
        while not ended and (buf0 * frame + len(buf)) < (cut + chunk + pad) * frame:
            block = next(source, None)
            if block is None:
                ended = True
            else:
                buf = np.concatenate([buf, block])
        total = buf0 * frame + len(buf)  # samples seen so far
        avail = total // frame  # whole frames seen so far
        rms = _frame_rms(buf[(cut - buf0) * frame :], frame)[:chunk]  # [frames] from the cut on
        peak = max(peak, float(rms.max(initial=0.0)))
        last = ended and total <= (cut + chunk) * frame
        end, nxt, right = None, None, 0  # this window's last kept frame, the next one's first
        if min_pause:
            quiet = rms < max(peak * 10 ** (-cfg.pause_db / 20), SILENCE_PEAK)
            hi = (avail - cut - min_seg) if ended else chunk
            pause = _first_pause(quiet, min_pause, min_seg, hi)
            if pause is not None:
                i, j = pause
                inner = j - i > 2 * margin
                end = cut + max(1, i + margin if inner else (i + j) // 2)
                nxt = max(end, cut + (j - margin if inner else (i + j) // 2))
        if end is None and not last:
            third = len(rms) * 2 // 3
            end = nxt = cut + third + int(np.argmin(rms[third:]))
            right = pad
        lo = (cut - left - buf0) * frame
        if end is None or nxt is None:
            yield Window((cut - left) * frame, buf[lo:].copy(), cut, None)
            return
        yield Window((cut - left) * frame, buf[lo : (end + right - buf0) * frame].copy(), cut, end)
        cut, left = nxt, right
        drop = cut - left - buf0
        buf, buf0 = buf[drop * frame :], buf0 + drop


LogProbFn = Callable[[Sequence[np.ndarray]], tuple[Tensor, Tensor]]
"""A model call: waveforms to log-probs [B, T, V] and frame counts [B]."""


def stitched_log_probs(
    blocks: Iterable[np.ndarray], log_probs: LogProbFn, frame_samples: int, cfg: WindowConfig, blank: int = 0
) -> tuple[Tensor, int]:
    """Log-probs [T, V] of a whole input run window by window, and its length in samples.

    Windows start on frame boundaries, so window frame j is frame ``start / frame_samples + j`` of the
    whole input; each window gives the frames it keeps (see ``windows``), and frames no window keeps
    (inside pauses) are blank.
    """
    pieces: list[Tensor] = []
    pending: list[Window] = []
    samples, cursor = 0, 0  # cursor: frames stitched so far

    def run() -> None:
        nonlocal cursor
        logp, lens = log_probs([w.wave for w in pending])  # [B, T, V], [B]
        for w, lp, n in zip(pending, logp, lens.tolist()):
            if w.keep_from > cursor:
                gap = torch.full((w.keep_from - cursor, lp.shape[-1]), float("-inf"))
                gap[:, blank] = 0.0
                pieces.append(gap)
            first = w.start // frame_samples
            hi = n if w.keep_to is None else min(n, w.keep_to - first)
            pieces.append(lp[w.keep_from - first : hi].float().cpu())
            cursor = w.keep_from + len(pieces[-1])
        pending.clear()

    for w in windows(blocks, frame_samples, cfg):
        samples = w.start + len(w.wave)
        pending.append(w)
        if len(pending) >= cfg.window_batch or w.keep_to is None:
            run()
    return torch.cat(pieces), samples


def split_points(logp: Tensor, vocab: CharVocab, max_frames: int) -> list[int]:
    """Frame indices that cut [T, V] log-probs into pieces of at most ``max_frames``, between words.

    A cut goes in the middle of the longest run of blank/space frames (greedy path) in the last
    third of each piece, preferring runs next to a space, so decoding the pieces apart changes nothing.
    """
    t = logp.shape[0]
    if t <= max_frames:
        return []
    space = vocab.index[SPACE]
    best = logp.argmax(-1).tolist()  # [T]
    silent = [b in (vocab.blank_id, space) for b in best]
    cuts, pos = [], 0
    while t - pos > max_frames:
        lo, hi = pos + max_frames * 2 // 3, pos + max_frames
        choice, score = hi, -1.0
        i = lo
        while i < hi:
            if not silent[i]:
                i += 1
                continue
            j = i
            while j < hi and silent[j]:
                j += 1
            word_gap = any(best[k] == space for k in range(max(i - 1, 0), min(j + 1, t)))
            run_score = (j - i) + (1_000 if word_gap else 0)
            if run_score > score:
                choice, score = (i + j) // 2, run_score
            i = j
        cuts.append(max(choice, pos + 1))
        pos = cuts[-1]
    return cuts
