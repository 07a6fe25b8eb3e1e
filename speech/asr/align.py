"""Word and character timestamps by CTC forced alignment of a transcript against its log-probabilities."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import torch
import torchaudio.functional as AF
from torch import Tensor

from text.char_vocab import SPACE, CharVocab

TIMESTAMPS = ("none", "word", "char")
"""Levels of timestamps a transcript row can carry."""


def check_timestamps(level: str) -> str:
    """``level`` itself, or a ValueError naming the accepted values."""
    if level not in TIMESTAMPS:
        raise ValueError(f"timestamps must be one of {', '.join(TIMESTAMPS)}, got {level!r}")
    return level


def min_frames(ids: Sequence[int]) -> int:
    """Frames a CTC path needs for ``ids``: one per token plus a blank between repeats."""
    return len(ids) + sum(1 for a, b in itertools.pairwise(ids) if a == b)


def token_spans(logp: Tensor, ids: Sequence[int], blank: int = 0) -> list[tuple[int, int]]:
    """Frame span ``[start, end)`` of every target token on the best CTC path through ``logp`` [T, V]."""
    if not ids:
        return []
    if min_frames(ids) > logp.shape[0]:
        raise ValueError(f"{len(ids)} tokens can't be aligned to {logp.shape[0]} frames")
    targets = torch.tensor([list(ids)], dtype=torch.int32)
    # -inf (a masked alphabet) would poison the path sums; a very low finite score keeps them defined.
    emission = logp.detach().float().cpu().clamp_min(-1e4)[None]  # [1, T, V]
    labels, _ = AF.forced_align(emission, targets, blank=blank)
    path = labels[0].tolist()  # [T]: the token on each frame, blank in between
    spans: list[tuple[int, int]] = []
    prev = blank
    for t, lab in enumerate(path):
        if lab != blank and lab != prev:
            spans.append((t, t + 1))  # a new token starts (repeats always have a blank in between)
        elif lab != blank:
            spans[-1] = (spans[-1][0], t + 1)
        prev = lab
    if len(spans) != len(ids):
        raise RuntimeError(f"alignment found {len(spans)} tokens for {len(ids)} targets")
    return spans


def align_text(
    logp: Tensor,
    text: str,
    vocab: CharVocab,
    frame_seconds: float,
    offset: float = 0.0,
    duration: float | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Words and characters of ``text`` with start/end seconds, from log-probabilities [T, V].

    ``offset`` is the time of frame 0 (a segment of a longer file); times are clipped to ``duration``.
    """
    ids = vocab.encode(text)
    spans = token_spans(logp, ids, vocab.blank_id)
    end_cap = duration if duration is not None else float("inf")

    def sec(frame: int) -> float:
        return round(min(offset + frame * frame_seconds, end_cap), 3)

    chars: list[dict[str, Any]] = []
    words: list[dict[str, Any]] = []
    current: list[tuple[str, int, int]] = []

    def close_word() -> None:
        if current:
            words.append({"word": "".join(c for c, _, _ in current), "start": sec(current[0][1]),
                          "end": sec(current[-1][2])})
            current.clear()

    for ch, (s, e) in zip(text, spans):
        if ch == SPACE:
            close_word()
            continue
        chars.append({"char": ch, "start": sec(s), "end": sec(e)})
        current.append((ch, s, e))
    close_word()
    return words, chars


def shift(items: list[dict[str, Any]], seconds: float) -> list[dict[str, Any]]:
    """Copies of timestamped items moved by ``seconds``."""
    return [{**it, "start": round(it["start"] + seconds, 3), "end": round(it["end"] + seconds, 3)} for it in items]
