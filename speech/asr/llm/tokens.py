"""Byte-level tokens with specials and language tokens, and the interleaved audio/text sequences."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, overload

import torch
from torch import Tensor

SPECIALS = ("<pad>", "<bos>", "<eos>", "<lid>", "<sep>", "<audio>")
"""Special tokens, numbered after the 256 byte values."""
AUDIO = -1
"""Placeholder id in a token list where an audio embedding is spliced in."""
IGNORE = -100
"""Target id that the loss skips."""


class ByteTokenizer:
    """UTF-8 bytes (0-255), then the specials, then one token per known language."""

    def __init__(self, langs: Sequence[str]):
        self.langs = list(langs)
        self.pad_id, self.bos_id, self.eos_id, self.lid_id, self.sep_id, self.audio_id = range(256, 256 + len(SPECIALS))
        self.first_lang = 256 + len(SPECIALS)
        self.lang_ids = {lang: self.first_lang + i for i, lang in enumerate(self.langs)}

    def __len__(self) -> int:
        return self.first_lang + len(self.langs)

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: Sequence[int]) -> str:
        """Bytes back to text; specials are skipped and a cut-off character is dropped."""
        return bytes(i for i in ids if 0 <= i < 256).decode("utf-8", errors="ignore")

    def lang_id(self, lang: str | None) -> int | None:
        """The language's token, or ``None`` for an unknown (or no) language."""
        return self.lang_ids.get(lang) if lang else None

    def lang_of(self, token: int) -> str:
        return self.langs[token - self.first_lang]


@dataclass
class Segment:
    """One utterance of a sequence: its audio clip and, when known, language and text."""

    clip: int
    """Row of the clip in the batch of encoded audio."""
    frames: int
    """Audio embeddings of the clip (after the projector)."""
    lang: int | None = None
    """Language token, or ``None`` to write the utterance without one."""
    text: list[int] | None = None
    """Byte ids of the transcript; ``None`` for the utterance to transcribe at inference."""
    offsets: list[int] | None = None
    """Per audio embedding, the character of the transcript it should sit next to (CTC-compressed audio), or
    ``None`` to number the audio positions in order like any token."""


class EncodedAudio(NamedTuple):
    """Audio embeddings [N, A, D] of a batch of clips, their counts [N] and, for CTC-compressed audio, the
    character offset of each embedding in its transcript [N, A] (``None`` otherwise)."""

    audio: Tensor
    lens: Tensor
    offsets: Tensor | None

    def segment(self, clip: int, lang: int | None = None, text: list[int] | None = None) -> Segment:
        """The ``Segment`` of clip ``clip``."""
        n = int(self.lens[clip])
        offsets = self.offsets[clip, :n].tolist() if self.offsets is not None else None
        return Segment(clip, n, lang, text, offsets)


@dataclass
class TokenSequence:
    """A flat sequence: token ids (``AUDIO`` where audio goes), the audio source of each position, targets."""

    ids: list[int]
    clip: list[int]
    frame: list[int]
    targets: list[int]
    pos: list[int]


@overload
def is_continuation(token: int) -> bool: ...
@overload
def is_continuation(token: Tensor) -> Tensor: ...
def is_continuation(token: int | Tensor) -> bool | Tensor:
    """Whether ``token`` (an id, or a tensor of them) is a UTF-8 continuation byte (0x80-0xBF), the second or
    later byte of a character."""
    return (token >= 0x80) & (token < 0xC0)


def next_position(last: int, token: int) -> int:
    """Rotary position of ``token`` after a token at ``last``: text counts characters, so a continuation
    byte keeps its character's position."""
    return last + (not is_continuation(token))


def build_sequence(tok: ByteTokenizer, context: Sequence[Segment], query: Segment, upto: str = "eos") -> TokenSequence:
    """``[<audio> A_i <lid> lang_i <bos> text_i <eos>]* <audio> A <lid> [lang] <bos> text <eos>``.

    Targets are every utterance's language token, text and ``<eos>`` (``IGNORE`` elsewhere), aligned with
    ``ids`` (position ``i`` is predicted from positions ``< i``): example ``i`` is learnt from the ``i``
    examples before it, so one sequence trains every number of shots up to its length. ``upto`` cuts the
    query: ``"lid"`` ends after ``<lid>`` (language identification), ``"bos"`` after ``<bos>`` (transcription
    prompt, no targets).

    Positions (rotary) count up token by token, with two exceptions. Text counts characters, not bytes:
    the continuation bytes of a UTF-8 character share its first byte's position (``next_position``), as
    decoding does. And a segment with ``offsets`` puts its audio embeddings at the positions of the
    transcript characters they are expected to align with, so that reading the audio is a fixed-distance
    lookup rather than an alignment the LM must discover; counting characters keeps that lookup in step
    when an orthography writes a sound with a two-byte letter where the CTC head heard a one-byte one. The
    language token's position is kept free when it is absent, so ``<bos>`` is always ``<lid>`` + 2.
    """
    if upto not in ("lid", "bos", "eos"):
        raise ValueError(f"upto must be lid, bos or eos, got {upto!r}")
    seq = TokenSequence([], [], [], [], [])
    nxt = 0  # next free position

    def put(ids: Sequence[int], target: bool, at: int | None = None) -> None:
        nonlocal nxt
        nxt = nxt if at is None else at
        seq.ids.extend(ids)
        seq.clip.extend([-1] * len(ids))
        seq.frame.extend([-1] * len(ids))
        seq.targets.extend(ids if target else [IGNORE] * len(ids))
        for i in ids:
            seq.pos.append(next_position(nxt - 1, i))
            nxt = seq.pos[-1] + 1

    def audio(seg: Segment) -> None:
        nonlocal nxt
        put([tok.audio_id], False)
        seq.ids.extend([AUDIO] * seg.frames)
        seq.clip.extend([seg.clip] * seg.frames)
        seq.frame.extend(range(seg.frames))
        seq.targets.extend([IGNORE] * seg.frames)
        if seg.offsets is None:
            seq.pos.extend(range(nxt, nxt + seg.frames))
            nxt += seg.frames
        else:  # <audio> p, <lid> p + 1, lang p + 2, <bos> p + 3, character j at p + 4 + j
            seq.pos.extend(nxt + 3 + o for o in seg.offsets)
        put([tok.lid_id], False)

    def head(seg: Segment, target: bool) -> None:
        lid = seq.pos[-1]
        if seg.lang is not None:
            put([seg.lang], target)
        put([tok.bos_id], False, at=lid + 2)

    def tail(text: list[int], target: bool) -> None:
        nonlocal nxt
        put([*text, tok.eos_id], target)
        nxt = max(seq.pos) + 1

    for seg in context:
        if seg.text is None:
            raise ValueError("an in-context example needs its transcript")
        audio(seg)
        head(seg, upto == "eos")
        tail(seg.text, upto == "eos")
    audio(query)
    if upto == "lid":
        return seq
    head(query, upto == "eos")
    if upto == "eos":
        if query.text is None:
            raise ValueError("a training sequence needs the query transcript")
        tail(query.text, True)
    return seq


def pad_sequences(seqs: Sequence[TokenSequence], pad_id: int, left: bool = False) -> dict[str, Any]:
    """Pad sequences into ``ids/clip/frame/targets/pos`` [B, L] and ``mask`` [B, L] (True = real).

    Training pads on the right; decoding prompts pad on the left so every prompt ends at the last column.
    """
    n = max(len(s.ids) for s in seqs)
    out = {
        "ids": torch.full((len(seqs), n), pad_id, dtype=torch.long),
        "clip": torch.full((len(seqs), n), -1, dtype=torch.long),
        "frame": torch.full((len(seqs), n), -1, dtype=torch.long),
        "targets": torch.full((len(seqs), n), IGNORE, dtype=torch.long),
        "pos": torch.zeros(len(seqs), n, dtype=torch.long),
        "mask": torch.zeros(len(seqs), n, dtype=torch.bool),
    }
    for i, s in enumerate(seqs):
        cols = slice(n - len(s.ids), n) if left else slice(0, len(s.ids))
        for key in ("ids", "clip", "frame", "targets", "pos"):
            out[key][i, cols] = torch.tensor(getattr(s, key), dtype=torch.long)
        out["mask"][i, cols] = True
    return out
