"""Speech datamodule: manifests in, length-bucketed padded batches of 16 kHz audio out."""

from __future__ import annotations

import logging
import os
import random
from typing import Any

import lightning as L
import numpy as np
import soxr
import torch
from torch.utils.data import DataLoader, Dataset

from common.io import append_jsonl
from datamodules.bucketing import DurationBatchSampler
from datamodules.manifest import read_manifest
from speech.audio import SAMPLE_RATE, AudioError, audio_duration, load_audio
from speech.augment import Augment, AugmentConfig
from text.char_vocab import CharVocab
from text.normalize import normalize_transcript

log = logging.getLogger(__name__)


def report_bad(log_path: str | os.PathLike[str] | None, path: str, reason: str, stage: str) -> None:
    """Record a skipped input in the run's bad-input log (safe from several worker processes)."""
    log.warning("skipping %s: %s", path, reason)
    if log_path:
        append_jsonl(log_path, {"audio": path, "reason": reason, "stage": stage})


def load_row_audio(row: dict[str, Any], bad_log: str | os.PathLike[str] | None, stage: str) -> np.ndarray | None:
    """The waveform of a manifest row, or ``None`` once the bad-input log says why it is unusable."""
    try:
        return load_audio(row["audio"])
    except AudioError as e:
        report_bad(bad_log, row["audio_raw"], e.reason, stage)
        return None


class SpeechDataset(Dataset):
    """Manifest rows to ``{wave, target, text, lang}`` items; an unusable file yields ``None``."""

    def __init__(
        self,
        rows: list[dict[str, Any]],
        vocab: CharVocab | None,
        speed_perturb: list[float] | None = None,
        bad_log: str | None = None,
        stage: str = "train",
        augment: Augment | None = None,
    ):
        self.rows, self.vocab, self.bad_log, self.stage = rows, vocab, bad_log, stage
        self.speeds = list(speed_perturb or [])
        self.augment = augment
        self._rng: tuple[int, np.random.Generator] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any] | None:
        row = self.rows[i]
        wave = load_row_audio(row, self.bad_log, self.stage)
        if wave is None:
            return None
        if self.speeds:
            # Playing at speed f: treat the signal as sampled at 16k*f and resample to 16k.
            f = random.choice(self.speeds)
            if f != 1.0:
                wave = soxr.resample(wave, int(SAMPLE_RATE * f), SAMPLE_RATE).astype(np.float32)
        if self.augment is not None:
            wave = self.augment(wave, self.rng())
        text = normalize_transcript(row.get("text", ""), row.get("lang"))
        target = self.vocab.encode(text) if self.vocab is not None else []
        return {"wave": torch.from_numpy(wave), "target": torch.tensor(target, dtype=torch.long), "text": text,
                "lang": row.get("lang", "und"), "audio": row["audio_raw"]}

    def rng(self) -> np.random.Generator:
        """This process's augmentation generator, seeded from torch's seed (distinct per worker, set by ``seed``)."""
        if self._rng is None or self._rng[0] != os.getpid():
            self._rng = (os.getpid(), np.random.default_rng(torch.initial_seed()))
        return self._rng[1]


def collate_speech(items: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """Pad a batch; items that failed to load are dropped, and an all-bad batch becomes ``None``."""
    good = [x for x in items if x is not None]
    if not good:
        return None
    wave_lens = torch.tensor([len(x["wave"]) for x in good])
    wave = torch.zeros(len(good), int(wave_lens.max()))
    target_lens = torch.tensor([len(x["target"]) for x in good])
    targets = torch.zeros(len(good), max(int(target_lens.max()), 1), dtype=torch.long)
    for i, x in enumerate(good):
        wave[i, : len(x["wave"])] = x["wave"]
        targets[i, : len(x["target"])] = x["target"]
    return {
        "wave": wave, "wave_lens": wave_lens, "targets": targets, "target_lens": target_lens,
        "texts": [x["text"] for x in good], "langs": [x["lang"] for x in good],
        "audio": [x["audio"] for x in good], "seconds": float(wave_lens.sum()) / SAMPLE_RATE,
    }


class SpeechDataModule(L.LightningDataModule):
    """Reads JSONL/TSV manifests (the generated corpus or a user's own) for CTC training."""

    def __init__(
        self,
        train_manifest: str | None = None,
        val_manifest: str | None = None,
        test_manifest: str | None = None,
        max_batch_seconds: float = 120.0,
        max_batch_size: int | None = None,
        num_buckets: int = 30,
        shuffle: bool = True,
        sorted_epochs: int = 0,
        speed_perturb: list[float] | None = None,
        min_seconds: float = 0.1,
        max_seconds: float = 30.0,
        num_workers: int = 2,
        seed: int = 0,
        bad_audio_log: str | None = None,
        vocab_path: str | None = None,
        augment: dict[str, Any] | None = None,
        augment_from_epoch: int = 0,
    ):
        super().__init__()
        self.save_hyperparameters(logger=False)
        self._rows: dict[str, list[dict[str, Any]]] = {}
        self._vocab: CharVocab | None = None
        # Training waveforms only (speech.augment); None when every probability is 0.
        aug = AugmentConfig.from_dict(dict(augment or {}))
        if aug.speed_prob and speed_perturb:
            raise ValueError("data.speed_perturb and data.augment.speed_prob would both change speed: "
                             "set data.speed_perturb=null or data.augment.speed_prob=0")
        self.augment_cfg = aug if aug.active else None
        if augment_from_epoch < 0:
            raise ValueError(f"data.augment_from_epoch={augment_from_epoch}: give 0 (from the start) or a later epoch")

    def setup(self, stage: str) -> None:
        trainer = self.trainer
        if (self.augment_cfg and self.hp.augment_from_epoch and trainer is not None
                and getattr(trainer, "reload_dataloaders_every_n_epochs", 0) != 1):
            # The training loader is built once unless Lightning rebuilds it every epoch, and only a rebuilt
            # loader can switch augmentation on.
            raise ValueError(f"data.augment_from_epoch={self.hp.augment_from_epoch} needs "
                             "trainer.reload_dataloaders_every_n_epochs=1")

    @property
    def hp(self) -> Any:
        """The constructor arguments (``self.hparams`` typed loosely for attribute access)."""
        return self.hparams

    def rows(self, stage: str) -> list[dict[str, Any]]:
        """Usable rows of a split: durations known and within bounds; bad files reported."""
        if stage not in self._rows:
            manifest = self.hparams[f"{stage}_manifest"]
            if not manifest:
                raise ValueError(f"data.{stage}_manifest is not set")
            rows = []
            for row in read_manifest(manifest):
                if "duration" not in row:
                    try:
                        row["duration"] = audio_duration(row["audio"])
                    except AudioError as e:
                        report_bad(self.hp.bad_audio_log, row["audio_raw"], e.reason, stage)
                        continue
                reason = self.duration_problem(row["duration"])
                if reason:
                    report_bad(self.hp.bad_audio_log, row["audio_raw"], reason, stage)
                    continue
                rows.append(row)
            self._rows[stage] = rows
        return self._rows[stage]

    def duration_problem(self, duration: float) -> str | None:
        """Why an utterance of this length is not used (outside ``[min_seconds, max_seconds]``), or None."""
        if self.hp.min_seconds <= duration <= self.hp.max_seconds:
            return None
        return f"duration {duration:.2f} s outside [{self.hp.min_seconds}, {self.hp.max_seconds}] s"

    def train_transcripts(self) -> list[dict[str, Any]]:
        """Rows with the training ``text`` and ``lang`` (the vocabulary and languages come from them)."""
        return self.rows("train")

    @property
    def vocab(self) -> CharVocab:
        """Characters of the training transcripts (or a saved vocabulary when given)."""
        if self._vocab is None:
            if self.hp.vocab_path:
                self._vocab = CharVocab.load(self.hp.vocab_path)
            else:
                rows = self.train_transcripts()
                self._vocab = CharVocab.build((normalize_transcript(r.get("text", ""), r.get("lang")) for r in rows),
                                              langs=[r.get("lang", "und") for r in rows])
        return self._vocab

    def langs(self) -> list[str]:
        return sorted({r.get("lang", "und") for r in self.train_transcripts()})

    def model_kwargs(self) -> dict[str, Any]:
        """What the model needs from the data before it can be built."""
        return {"vocab": self.vocab, "langs": self.langs()}

    def set_vocab(self, vocab: CharVocab) -> None:
        """Use the vocabulary of an existing model (evaluation, fine-tuning)."""
        self._vocab = vocab

    def batch_sampler(self, rows: list[dict[str, Any]], train: bool) -> DurationBatchSampler:
        """Length-bucketed batches of ``rows``, sharded over the trainer's ranks."""
        trainer = self.trainer
        return DurationBatchSampler(
            [r["duration"] for r in rows], self.hp.max_batch_seconds, self.hp.max_batch_size,
            num_buckets=self.hp.num_buckets, shuffle=train and self.hp.shuffle, seed=self.hp.seed,
            rank=trainer.global_rank if trainer else 0, world_size=trainer.world_size if trainer else 1,
            sorted_epochs=self.hp.sorted_epochs if train else 0,
        )

    def _loader(self, stage: str, train: bool) -> DataLoader:
        rows = self.rows(stage)
        sampler = self.batch_sampler(rows, train)
        augment = Augment(self.augment_cfg) if train and self.augment_cfg and self.augmenting() else None
        ds = SpeechDataset(rows, self.vocab, self.hp.speed_perturb if train else None,
                           self.hp.bad_audio_log, stage, augment)
        workers = self.hp.num_workers
        return DataLoader(ds, batch_sampler=sampler, collate_fn=collate_speech, num_workers=workers,
                          persistent_workers=workers > 0, pin_memory=torch.cuda.is_available())

    def augmenting(self) -> bool:
        """Whether this epoch's training batches are augmented (from ``augment_from_epoch`` on: a curriculum that
        lets a model under a time budget learn the clean speech first)."""
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        return epoch >= self.hp.augment_from_epoch

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)
