"""M3-style patches (Wu et al., 2025, CLaMP 3): a score as text cut into bar-sized patches of characters.

ABC: each header line is a patch, and each bar of the body (with its bar line) is one. MTF: whole MIDI message lines
are packed into patches of up to ``patch_size`` characters (at 64, a note's note_on and note_off and the next note_on
share one), so a budget of 256 patches holds a 16-bar tune played with its repeats (about 570 messages) where one
message a patch stopped after a quarter of it. A patch longer than ``patch_size`` characters continues in the next.
Characters are bytes shifted by ``OFFSET`` so that 0 can pad and 1 can mark a patch's end.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from torch import Tensor

PAD, END = 0, 1
OFFSET = 2
VOCAB = 256 + OFFSET
"""Character ids: pad, end of patch, then the 256 byte values."""

_HEADER = re.compile(r"^(?:[A-Za-z]:|%%)")
_BAR = re.compile(r"(:*\|+[\]:]*[0-9]*|\[\||::)")


def abc_patches(text: str) -> list[str]:
    """Header lines, then the bars of the body, each with the bar line that closes it (``|``, ``:|``, ``||``...)."""
    out: list[str] = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line or (line.lstrip().startswith("%") and not line.startswith("%%")):
            continue  # comments carry no music
        if _HEADER.match(line) and not line.startswith("["):
            out.append(line + "\n")
            continue
        pieces = _BAR.split(line)
        bar = ""
        for n, piece in enumerate(pieces):
            bar += piece
            if n % 2 == 1 and bar.strip(" |:]"):  # a bar line closes a bar that holds music
                out.append(bar)
                bar = ""
        if bar.strip():
            out.append(bar)
        if out:
            out[-1] += "\n"
    return out


def mtf_patches(text: str, patch_size: int) -> list[str]:
    """MTF lines (one MIDI message each) packed whole, in order, into patches of at most ``patch_size`` bytes."""
    out: list[str] = []
    current = ""
    for line in text.splitlines():
        if not line.strip():
            continue
        line += "\n"
        if current and len((current + line).encode("utf-8")) > patch_size:
            out.append(current)
            current = ""
        current += line
    if current:
        out.append(current)
    return out


def encode_patches(patches: Sequence[str], patch_size: int, max_patches: int) -> Tensor:
    """Character ids ``[N, patch_size]`` (``N <= max_patches``); a patch ends with ``END`` where there is room."""
    rows: list[list[int]] = []
    for patch in patches:
        data = list(patch.encode("utf-8"))
        for start in range(0, max(len(data), 1), patch_size):
            chunk = [b + OFFSET for b in data[start : start + patch_size]]
            rows.append(chunk + [END] + [PAD] * (patch_size - len(chunk) - 1) if len(chunk) < patch_size else chunk)
            if len(rows) == max_patches:
                return torch.tensor(rows, dtype=torch.long)
    if not rows:
        raise ValueError("nothing to encode: the score has no patches")
    return torch.tensor(rows, dtype=torch.long)


def decode_patch(ids: Sequence[int]) -> str:
    """The text of one encoded patch (for tests and for reading masked-patch predictions)."""
    out = bytearray()
    for i in ids:
        if i == END:
            break
        if i >= OFFSET:
            out.append(int(i) - OFFSET)
    return out.decode("utf-8", errors="replace")


def pad_scores(scores: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """Scores ``[N_i, P]`` to ``ids [B, N, P]`` and ``mask [B, N]`` (True on real patches)."""
    width = max(s.shape[0] for s in scores)
    size = scores[0].shape[1]
    ids = torch.full((len(scores), width, size), PAD, dtype=torch.long)
    mask = torch.zeros(len(scores), width, dtype=torch.bool)
    for b, s in enumerate(scores):
        ids[b, : s.shape[0]] = s
        mask[b, : s.shape[0]] = True
    return ids, mask
