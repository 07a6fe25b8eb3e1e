"""Audio as a sequence of segment features: mean log-mel per segment, or the mean hidden state of a suite SSL encoder
(loaded through ``common.hub``) per segment, CLaMP 3's MERT features in small. Features are cached on disk by the
file's content and the feature settings, so each recording is read once for every epoch and every index."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchaudio
from torch import Tensor

from common import hub
from common.io import atomic_open
from music.clamp.config import AudioConfig
from speech.audio import SAMPLE_RATE, AudioError, load_audio

AUDIO_EXTS = (".wav", ".flac", ".mp3", ".ogg")
LOG_FLOOR, LOG_MEAN, LOG_STD = 1e-6, -6.0, 4.0
"""Fixed log-mel normalisation: per-file normalisation would erase loudness (the dynamics attribute)."""


def feature_fields(cfg: AudioConfig) -> dict[str, Any]:
    """The settings that change the features (not the encoder behind them)."""
    keep = ("features", "ssl_model", "n_mels", "n_fft", "f_max", "segment_seconds", "max_segments")
    return {k: v for k, v in asdict(cfg).items() if k in keep}


class SegmentFeatures:
    """Waveform -> ``[S, F]`` float32 segment features, as ``AudioConfig`` says."""

    def __init__(self, cfg: AudioConfig):
        self.cfg = cfg
        self.hop = SAMPLE_RATE // 100  # 10 ms frames, pooled into segments
        self.ssl: Any = None
        if cfg.features == "ssl":
            assert cfg.ssl_model is not None
            model = hub.load_pretrained(cfg.ssl_model).model
            # A pretraining wrapper keeps its encoder as .encoder; a bare encoder is its own.
            self.ssl = getattr(model, "encoder", model).eval()
        else:
            self.mel = torchaudio.transforms.MelSpectrogram(
                SAMPLE_RATE, n_fft=cfg.n_fft, hop_length=self.hop, n_mels=cfg.n_mels, f_min=30.0, f_max=cfg.f_max,
                power=2.0)

    @property
    def dim(self) -> int:
        """Width of one segment feature."""
        if self.ssl is not None:
            return int(self.ssl.cfg.d_model)
        return self.cfg.n_mels

    @torch.no_grad()
    def __call__(self, wave: np.ndarray) -> np.ndarray:
        limit = int(self.cfg.max_segments * self.cfg.segment_seconds * SAMPLE_RATE)
        x = torch.from_numpy(wave[:limit]).float()[None]  # [1, S]
        if self.ssl is not None:
            frames, _ = self.ssl(x, torch.tensor([x.shape[1]]))  # [1, T, D]
            frames = frames[0]
        else:
            frames = ((self.mel(x)[0].clamp_min(LOG_FLOOR).log() - LOG_MEAN) / LOG_STD).T  # [T, F]
        return pool_segments(frames, x.shape[1] / SAMPLE_RATE, self.cfg.segment_seconds).numpy()


def pool_segments(frames: Tensor, seconds: float, segment_seconds: float) -> Tensor:
    """Mean of the frames ``[T, F]`` in each segment of ``segment_seconds`` -> ``[S, F]``."""
    n = max(1, round(seconds / segment_seconds))
    edges = torch.linspace(0, frames.shape[0], n + 1).round().long()
    return torch.stack([frames[int(a) : max(int(b), int(a) + 1)].mean(0) for a, b in itertools.pairwise(edges)])


class FeatureCache:
    """Segment features of audio files, computed once and kept as ``<dir>/<sha256>.npy``.

    The key hashes the file's bytes and the feature settings, so a changed file or setting is recomputed and a moved
    file is not. ``dir=None`` keeps them in memory only.
    """

    def __init__(self, cfg: AudioConfig, cache_dir: str | os.PathLike[str] | None = None):
        self.cfg = cfg
        self.dir = Path(cache_dir) if cache_dir else None
        self.settings = json.dumps(feature_fields(cfg), sort_keys=True).encode()
        self._features: SegmentFeatures | None = None
        self._memory: dict[str, np.ndarray] = {}
        self.hits = self.misses = 0

    def key(self, path: str | os.PathLike[str]) -> str:
        h = hashlib.sha256(self.settings)
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()

    def get(self, path: str | os.PathLike[str]) -> np.ndarray:
        """``[S, F]`` features of one file; ``ValueError`` names why an unreadable file can't be read."""
        try:
            key = self.key(path)
        except OSError as e:
            raise ValueError(f"unreadable audio ({e.strerror or e})") from None
        if key in self._memory:
            self.hits += 1
            return self._memory[key]
        cached = self.dir / f"{key}.npy" if self.dir else None
        if cached is not None and cached.is_file():
            try:
                feats = np.load(cached, allow_pickle=False)
                self.hits += 1
            except (OSError, ValueError):
                feats = self._compute(path, cached)  # a torn cache file is simply recomputed
        else:
            feats = self._compute(path, cached)
        self._memory[key] = feats
        return feats

    def _compute(self, path: str | os.PathLike[str], cached: Path | None) -> np.ndarray:
        self.misses += 1
        try:
            wave = load_audio(path)
        except AudioError as e:
            raise ValueError(e.reason) from None
        if self._features is None:
            self._features = SegmentFeatures(self.cfg)
        feats = self._features(wave).astype(np.float32)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            with atomic_open(cached, "wb") as f:
                np.save(f, feats, allow_pickle=False)
        return feats
