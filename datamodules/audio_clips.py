"""Fixed-length audio clips for vocoder training: random crops of manifest audio, fixed crops for validation."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from datamodules.audio_only import AudioOnlyDataModule
from datamodules.speech import load_row_audio
from speech.audio import SAMPLE_RATE


class ClipDataset(Dataset):
    """Manifest rows -> ``{wave [samples], len}``: a random crop (training) or the first ``samples`` (evaluation).

    Shorter audio is zero-padded and ``len`` says how much of the clip is real; an unreadable file yields None.
    """

    def __init__(self, rows: list[dict[str, Any]], samples: int, random_crop: bool, bad_log: str | None = None,
                 stage: str = "train"):
        self.rows, self.samples, self.random_crop, self.bad_log, self.stage = rows, samples, random_crop, bad_log, stage
        self._rng: tuple[int, np.random.Generator] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def rng(self) -> np.random.Generator:
        """This process's crop generator, seeded from torch's seed (distinct per worker, set by ``seed``)."""
        if self._rng is None or self._rng[0] != os.getpid():
            self._rng = (os.getpid(), np.random.default_rng(torch.initial_seed()))
        return self._rng[1]

    def __getitem__(self, i: int) -> dict[str, Any] | None:
        row = self.rows[i]
        wave = load_row_audio(row, self.bad_log, self.stage)
        if wave is None:
            return None
        start = int(self.rng().integers(0, len(wave) - self.samples + 1)) if (
            self.random_crop and len(wave) > self.samples) else 0
        clip = wave[start:start + self.samples]
        out = np.zeros(self.samples, dtype=np.float32)
        out[: len(clip)] = clip
        return {"wave": torch.from_numpy(out), "len": len(clip)}


def collate_clips(items: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """Stack clips; unreadable items are dropped, and an all-bad batch becomes None."""
    good = [x for x in items if x is not None]
    if not good:
        return None
    lens = torch.tensor([x["len"] for x in good])
    return {"wave": torch.stack([x["wave"] for x in good]), "wave_lens": lens,
            "seconds": float(lens.sum()) / SAMPLE_RATE}


class AudioClipDataModule(AudioOnlyDataModule):
    """Any manifest with an ``audio`` column, served as fixed-length clips (transcripts are never read).

    Clip lengths are rounded down to whole hops, so a clip of ``k`` hops gives ``k + 1`` mel frames and the
    vocoder's ``k`` hops of output line up with it exactly.
    """

    def __init__(self, *args: Any, segment_seconds: float = 0.75, eval_seconds: float = 3.0, batch_size: int = 16,
                 hop: int = 256, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if segment_seconds * SAMPLE_RATE < hop or eval_seconds * SAMPLE_RATE < hop or batch_size < 1:
            raise ValueError(f"segment_seconds and eval_seconds must cover at least one hop ({hop} samples) "
                             f"and batch_size must be >= 1, got {segment_seconds}, {eval_seconds}, {batch_size}")

    def clip_samples(self, seconds: float) -> int:
        hop = int(self.hp.hop)
        return int(seconds * SAMPLE_RATE) // hop * hop

    def _loader(self, stage: str, train: bool) -> DataLoader:
        rows = self.rows(stage)
        trainer = self.trainer
        if trainer is not None and trainer.world_size > 1:  # each rank its own share of the rows
            rows = rows[trainer.global_rank:: trainer.world_size]
        seconds = self.hp.segment_seconds if train else self.hp.eval_seconds
        ds = ClipDataset(rows, self.clip_samples(seconds), random_crop=train, bad_log=self.hp.bad_audio_log,
                         stage=stage)
        workers = self.hp.num_workers
        return DataLoader(ds, batch_size=int(self.hp.batch_size), shuffle=train and self.hp.shuffle,
                          drop_last=train and len(ds) >= int(self.hp.batch_size),
                          collate_fn=collate_clips, num_workers=workers, persistent_workers=workers > 0,
                          pin_memory=torch.cuda.is_available())
