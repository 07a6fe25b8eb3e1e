"""Speaker-labelled audio: random fixed-length crops of training speakers, whole utterances for verification trials.

Any JSONL/TSV manifest whose rows carry ``audio`` and ``speaker`` works (the generated corpus built with
``corpus=speech_tts`` holds dev and test speakers out of training). Training batches are crops of one length drawn
per batch from ``crop_seconds`` (shorter utterances are looped to fill it), so they need no padding; dev and test
batches are whole utterances, length-bucketed and padded, labelled by speaker name for verification trials.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from datamodules.bucketing import DurationBatchSampler
from datamodules.manifest import ManifestError
from datamodules.speech import SpeechDataModule, load_row_audio
from speech.audio import SAMPLE_RATE
from speech.augment import Augment
from speech.features import pad_waves


class SpeakerDataset(Dataset):
    """Manifest rows to ``{wave, label, speaker, lang, audio}``; an unusable file yields ``None``."""

    def __init__(self, rows: list[dict[str, Any]], labels: dict[str, int] | None, bad_log: str | None, stage: str,
                 augment: Augment | None = None):
        self.rows, self.labels, self.bad_log, self.stage, self.augment = rows, labels, bad_log, stage, augment

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any] | None:
        row = self.rows[i]
        wave = load_row_audio(row, self.bad_log, self.stage)
        if wave is None:
            return None
        if self.augment is not None:
            wave = self.augment(wave, np.random.default_rng(int(torch.randint(0, 2**31, ()))))
        speaker = row["speaker"]
        return {"wave": torch.from_numpy(wave), "label": self.labels[speaker] if self.labels else -1,
                "speaker": speaker, "lang": row.get("lang", "und"), "audio": row["audio_raw"]}


class CropCollate:
    """Training batches: one crop length per batch, drawn from ``[lo, hi]`` seconds; each item looped if shorter."""

    def __init__(self, crop_seconds: tuple[float, float]):
        self.lo, self.hi = (int(s * SAMPLE_RATE) for s in crop_seconds)

    def __call__(self, items: list[dict[str, Any] | None]) -> dict[str, Any] | None:
        good = [x for x in items if x is not None]
        if not good:
            return None
        n = int(torch.randint(self.lo, self.hi + 1, ()))
        crops = []
        for x in good:
            w = x["wave"]
            if len(w) < n:
                w = w.repeat(n // len(w) + 1)
            start = int(torch.randint(0, len(w) - n + 1, ()))
            crops.append(w[start : start + n])
        return {"wave": torch.stack(crops), "wave_lens": torch.full((len(good),), n),
                "labels": torch.tensor([x["label"] for x in good]), "speakers": [x["speaker"] for x in good],
                "langs": [x["lang"] for x in good], "seconds": n * len(good) / SAMPLE_RATE}


def collate_whole(items: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """Dev/test batches: whole utterances, zero-padded, with their lengths."""
    good = [x for x in items if x is not None]
    if not good:
        return None
    wave, lens = pad_waves([x["wave"] for x in good])
    return {"wave": wave, "wave_lens": lens, "speakers": [x["speaker"] for x in good],
            "langs": [x["lang"] for x in good], "audio": [x["audio"] for x in good]}


class SpeakerDataModule(SpeechDataModule):
    """Manifests with a ``speaker`` column for speaker-encoder training (AAM-softmax) and verification."""

    def __init__(self, *args: Any, crop_seconds: tuple[float, float] = (2.0, 3.0), batch_size: int = 64,
                 **kwargs: Any):
        super().__init__(*args, **kwargs)
        if self.hparams.get("speed_perturb") or (self.augment_cfg is not None and self.augment_cfg.speed_prob):
            raise ValueError("data.speed_perturb / data.augment.speed_prob change the pitch, and with it the voice: "
                             "set them off for speaker training")
        lo, hi = crop_seconds
        if not 0 < lo <= hi:
            raise ValueError(f"data.crop_seconds must be [lo, hi] with 0 < lo <= hi, got {list(crop_seconds)}")
        self.crop_seconds, self.batch_size = (float(lo), float(hi)), int(batch_size)

    def rows(self, stage: str) -> list[dict[str, Any]]:
        rows = super().rows(stage)
        missing = next((r for r in rows if not r.get("speaker")), None)
        if missing is not None:
            raise ManifestError(f"{self.hparams[f'{stage}_manifest']}: row {missing['audio_raw']} has no 'speaker' "
                                "field, which speaker training and verification need")
        return rows

    def speakers(self) -> list[str]:
        """The training speakers, sorted: AAM-softmax's classes."""
        return sorted({r["speaker"] for r in self.rows("train")})

    def model_kwargs(self) -> dict[str, Any]:
        return {"speakers": self.speakers()}

    def _dataset(self, stage: str, train: bool) -> SpeakerDataset:
        labels = {s: i for i, s in enumerate(self.speakers())} if train else None
        augment = Augment(self.augment_cfg) if train and self.augment_cfg else None
        return SpeakerDataset(self.rows(stage), labels, self.hp.bad_audio_log, stage, augment)

    def _sampler(self, durations: list[float], max_batch: float, max_size: int | None,
                 train: bool) -> DurationBatchSampler:
        # One bucket: shuffled batches for training; for dev/test, utterances sorted by length and cut by padded
        # seconds (the least padding), sharded over the trainer's ranks either way.
        trainer = self.trainer
        return DurationBatchSampler(durations, max_batch, max_size, num_buckets=1, shuffle=train and self.hp.shuffle,
                                    seed=self.hp.seed, rank=trainer.global_rank if trainer else 0,
                                    world_size=trainer.world_size if trainer else 1)

    def _eval_loader(self, stage: str) -> DataLoader:
        ds = self._dataset(stage, train=False)
        sampler = self._sampler([r["duration"] for r in ds.rows], self.hp.max_batch_seconds,
                                self.hp.max_batch_size, train=False)
        return DataLoader(ds, batch_sampler=sampler, collate_fn=collate_whole, num_workers=self.hp.num_workers,
                          persistent_workers=self.hp.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        ds = self._dataset("train", train=True)
        # Every item counts one unit long: shuffled batches of exactly batch_size (the last one may be smaller).
        sampler = self._sampler([1.0] * len(ds), self.batch_size, self.batch_size, train=True)
        workers = self.hp.num_workers
        return DataLoader(ds, batch_sampler=sampler, collate_fn=CropCollate(self.crop_seconds), num_workers=workers,
                          persistent_workers=workers > 0)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

