"""Long audio in bounded memory: stream the file, run overlapping windows, stitch their CTC log-probs."""

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
    """How a long input is cut into overlapping windows for the encoder."""

    chunk_seconds: float = 30.0
    """Window length; inputs up to this length run in one piece."""
    overlap_seconds: float = 4.0
    """Overlap of neighbouring windows; each keeps its frames nearest the middle of the overlap."""
    window_batch: int = 2
    """Windows run through the model together."""

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


def windows(blocks: Iterable[np.ndarray], size: int, step: int) -> Iterator[tuple[int, np.ndarray, bool]]:
    """``(start sample, wave, is_last)`` of windows of ``size`` every ``step`` samples, holding one window at most."""
    buf, start = np.zeros(0, dtype=np.float32), 0
    held: tuple[int, np.ndarray] | None = None
    for b in blocks:
        buf = np.concatenate([buf, b])
        while len(buf) >= size:
            if held is not None:
                yield held[0], held[1], False
            held = (start, buf[:size].copy())
            buf, start = buf[step:], start + step
    # After the last full window the buffer holds samples from its start + step on; only the part
    # past that window's end is new.
    if held is None:
        yield start, buf, True
    elif len(buf) > size - step:
        yield held[0], held[1], False
        yield start, buf, True
    else:
        yield held[0], held[1], True


LogProbFn = Callable[[Sequence[np.ndarray]], tuple[Tensor, Tensor]]
"""A model call: waveforms to log-probs [B, T, V] and frame counts [B]."""


def stitched_log_probs(
    blocks: Iterable[np.ndarray], log_probs: LogProbFn, frame_samples: int, cfg: WindowConfig
) -> tuple[Tensor, int]:
    """Log-probs [T, V] of a whole input run window by window, and its length in samples.

    Windows start on frame boundaries, so window frame j is frame ``start / frame_samples + j`` of the
    whole input; window i keeps its frames up to the middle of its overlap with window i + 1.
    """
    step = max(1, round((cfg.chunk_seconds - cfg.overlap_seconds) * SAMPLE_RATE / frame_samples)) * frame_samples
    size = step + round(cfg.overlap_seconds * SAMPLE_RATE / frame_samples) * frame_samples
    half = (size - step) // frame_samples // 2  # frames of overlap each side gives up
    pieces: list[Tensor] = []
    pending: list[tuple[int, np.ndarray, bool]] = []
    samples = 0

    def run() -> None:
        logp, lens = log_probs([w for _, w, _ in pending])  # [B, T, V], [B]
        for (start, _, last), lp, n in zip(pending, logp, lens.tolist()):
            first = start // frame_samples
            lo = 0 if first == 0 else half
            hi = n if last else min(n, step // frame_samples + half)
            pieces.append(lp[lo:hi].float().cpu())  # global frames [first + lo, first + hi)
        pending.clear()

    for start, wave, last in windows(blocks, size, step):
        samples = start + len(wave)
        pending.append((start, wave, last))
        if len(pending) >= cfg.window_batch or last:
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
