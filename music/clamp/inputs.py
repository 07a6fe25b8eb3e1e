"""Files and texts to CLaMP 3 inputs: the one place that knows which reader a modality takes, shared by training,
evaluation, ``MusicEncoder`` and the retrieval embedders. A bad file raises ``ValueError`` with the reason."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from music.clamp.abc import SHEET_EXTS, check_abc, read_sheet, strip_fields
from music.clamp.audio import AUDIO_EXTS, FeatureCache
from music.clamp.config import ClampConfig
from music.clamp.mtf import MIDI_EXTS, midi_to_mtf
from music.clamp.patches import abc_patches, encode_patches, mtf_patches, pad_scores
from text.tokenizer import SentencePieceTokenizer

MODALITY_EXTS = {"sheet": SHEET_EXTS, "midi": MIDI_EXTS, "audio": AUDIO_EXTS}
"""Modality -> file suffixes; any other input string is text."""


def modality_of(path: str | os.PathLike[str]) -> str | None:
    """``sheet``, ``midi`` or ``audio`` from a file's suffix; ``None`` for anything else."""
    suffix = Path(path).suffix.lower()
    return next((m for m, exts in MODALITY_EXTS.items() if suffix in exts), None)


class MusicInputs:
    """Reads each modality into model inputs; MTF text is kept in memory and audio features in ``FeatureCache``."""

    def __init__(self, cfg: ClampConfig, tokenizer: SentencePieceTokenizer,
                 audio_cache: str | os.PathLike[str] | None = None):
        self.cfg, self.tokenizer = cfg, tokenizer
        self.features = FeatureCache(cfg.audio, audio_cache)
        self._mtf: dict[tuple[str, float], str] = {}

    def score(self, text: str, kind: str) -> Tensor:
        """Patch ids ``[N, P]`` of ABC (``kind="abc"``) or MTF (``kind="mtf"``) text."""
        size = self.cfg.symbolic.patch_size
        patches = abc_patches(text) if kind == "abc" else mtf_patches(text, size)
        return encode_patches(patches, size, self.cfg.symbolic.max_patches)

    def abc(self, text: str) -> Tensor:
        """Patch ids of an ABC tune given as text (checked first)."""
        return self.score(check_abc(text), "abc")

    def sheet(self, path: str | os.PathLike[str], drop: tuple[str, ...] = ()) -> Tensor:
        """Patch ids of an ABC, MusicXML or kern file, without the header lines that start with ``drop``."""
        text = read_sheet(path)
        return self.score(strip_fields(text, drop) if drop else text, "abc")

    def midi(self, path: str | os.PathLike[str]) -> Tensor:
        """Patch ids of a MIDI file's MTF text."""
        try:
            key = (str(path), os.stat(path).st_mtime)
        except OSError as e:
            raise ValueError(f"unreadable MIDI ({e.strerror or e})") from None
        if key not in self._mtf:
            sym = self.cfg.symbolic  # an MTF line has over 12 characters: more lines than this never fit the patches
            self._mtf[key] = midi_to_mtf(path, max_lines=sym.max_patches * max(1, sym.patch_size // 12))
        return self.score(self._mtf[key], "mtf")

    def audio(self, path: str | os.PathLike[str]) -> Tensor:
        """Segment features ``[S, F]`` of a recording."""
        return torch.from_numpy(self.features.get(path))

    def file(self, path: str | os.PathLike[str]) -> tuple[str, Tensor]:
        """``(kind, input)`` of any music file: kind ``symbolic`` for sheet music and MIDI, ``audio`` for audio."""
        modality = modality_of(path)
        if modality is None:
            raise ValueError(f"not a music file ({Path(path).suffix or 'no extension'})")
        if not Path(path).is_file():
            raise ValueError("no such file")
        if modality == "audio":
            return "audio", self.audio(path)
        return "symbolic", self.sheet(path) if modality == "sheet" else self.midi(path)

    def texts(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """Token ids ``[B, T]`` and mask of texts."""
        return self.tokenizer.batch(list(texts), max_length=self.cfg.text.max_length)

    @staticmethod
    def symbolic_batch(scores: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """Padded ``[B, N, P]`` ids and ``[B, N]`` mask."""
        return pad_scores(scores)

    @staticmethod
    def audio_batch(feats: Sequence[Tensor | np.ndarray]) -> tuple[Tensor, Tensor]:
        """Padded ``[B, S, F]`` features and ``[B, S]`` mask."""
        items = [torch.as_tensor(f, dtype=torch.float32) for f in feats]
        width = max(f.shape[0] for f in items)
        out = torch.zeros(len(items), width, items[0].shape[1])
        mask = torch.zeros(len(items), width, dtype=torch.bool)
        for b, f in enumerate(items):
            out[b, : f.shape[0]] = f
            mask[b, : f.shape[0]] = True
        return out, mask
