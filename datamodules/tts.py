"""TTS datamodule: aligned manifests in, length-bucketed batches of log-mel frames with their unit durations out.

Manifest rows are the speech corpus's rows plus ``units`` (list of strings, ``speech.tts.units``) and ``durations``
(list of ints: mel frames per unit at ``MelSpec().hop``, summing to ``MelSpec().frames(samples)``). Audio paths
are relative to ``audio_root`` (default: the manifest's folder). The log-mel frames are computed here, in the
loader's workers, so the module sees ready frames; utterances longer than ``max_frames`` are cropped (a random
window in training, the start in evaluation) with their units cut to the window.

A batch (``collate_tts``)::

    mel [B, T, n_mels] (natural-log, unnormalised; 0 on padding)   frame_mask [B, T] bool   frame_lens [B]
    units list[list[str]]   durations [B, U] long (0 on padding; each row sums to its frame_len)
    speakers, langs, texts, audio: list[str]

The datamodule knows no unit ids (the vocabulary belongs to the model family): ``model_kwargs()`` hands the module
the training units, languages and the global mel mean and standard deviation.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from datamodules.bucketing import DurationBatchSampler
from datamodules.manifest import ManifestError, read_manifest
from datamodules.speech import load_row_audio, report_bad
from speech.vocoder.mel import LogMelSpectrogram, MelSpec

log = logging.getLogger(__name__)


def check_alignment(row: dict[str, Any], where: str) -> None:
    """``ManifestError`` unless ``row`` carries matching ``units`` (strings) and ``durations`` (ints >= 0)."""
    units, durs = row.get("units"), row.get("durations")
    if not isinstance(units, list) or not units or not all(isinstance(u, str) for u in units):
        raise ManifestError(f"{where}: 'units' must be a non-empty list of strings (an aligned TTS manifest)")
    if not isinstance(durs, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                             for d in durs):
        raise ManifestError(f"{where}: 'durations' must be a list of non-negative integers (mel frames)")
    if len(durs) != len(units):
        raise ManifestError(f"{where}: {len(units)} units but {len(durs)} durations")
    if sum(durs) == 0:
        raise ManifestError(f"{where}: durations sum to 0 frames")


def read_aligned(path: str, audio_root: str | None) -> list[dict[str, Any]]:
    """Rows of an aligned manifest with ``audio`` resolved against ``audio_root`` (default: the manifest's folder)."""
    root = Path(audio_root) if audio_root else Path(path).parent
    rows = read_manifest(path, resolve_paths=False)
    for i, row in enumerate(rows):
        check_alignment(row, f"{path}: row {i + 1} ({row['audio']})")
        audio = Path(row["audio"]).expanduser()
        row["audio"] = str(audio if audio.is_absolute() else root / audio)
    return rows


def crop(durations: list[int], start: int, length: int) -> tuple[list[int], list[int]]:
    """Indices of the units overlapping frames ``[start, start+length)`` and their durations inside the window."""
    keep, out, pos = [], [], 0
    for i, d in enumerate(durations):
        overlap = min(pos + d, start + length) - max(pos, start)
        if overlap > 0:
            keep.append(i)
            out.append(overlap)
        pos += d
    return keep, out


class TTSDataset(Dataset):
    """Aligned rows to ``{mel, units, durations, ...}`` items; unreadable or misaligned audio yields ``None``."""

    def __init__(self, rows: list[dict[str, Any]], max_frames: int, train: bool, bad_log: str | None = None,
                 stage: str = "train", spec: MelSpec | None = None):
        self.rows, self.max_frames, self.train, self.bad_log, self.stage = rows, max_frames, train, bad_log, stage
        self.mel = LogMelSpectrogram(spec or MelSpec())

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any] | None:
        row = self.rows[i]
        wave = load_row_audio(row, self.bad_log, self.stage)
        if wave is None:
            return None
        with torch.no_grad():
            mel = self.mel(torch.from_numpy(wave)[None])[0]  # [T, n_mels]
        units, durs = row["units"], row["durations"]
        if sum(durs) != mel.shape[0]:
            report_bad(self.bad_log, row["audio_raw"], f"durations sum to {sum(durs)} frames but the audio has "
                       f"{mel.shape[0]} (MelSpec hop {self.mel.spec.hop}): realign this manifest", self.stage)
            return None
        if mel.shape[0] > self.max_frames:
            start = random.randint(0, mel.shape[0] - self.max_frames) if self.train else 0
            keep, durs = crop(durs, start, self.max_frames)
            units, mel = [units[k] for k in keep], mel[start : start + self.max_frames]
        return {"mel": mel, "units": units, "durations": torch.tensor(durs, dtype=torch.long),
                "speaker": str(row.get("speaker", "unknown")), "lang": str(row.get("lang", "und")),
                "text": str(row.get("text", "")), "audio": row["audio_raw"]}


def collate_tts(items: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """Pad a batch; items that failed to load are dropped, and an all-bad batch becomes ``None``."""
    good = [x for x in items if x is not None]
    if not good:
        return None
    lens = torch.tensor([x["mel"].shape[0] for x in good])
    n_mels = good[0]["mel"].shape[1]
    mel = torch.zeros(len(good), int(lens.max()), n_mels)
    durations = torch.zeros(len(good), max(len(x["units"]) for x in good), dtype=torch.long)
    for i, x in enumerate(good):
        mel[i, : lens[i]] = x["mel"]
        durations[i, : len(x["durations"])] = x["durations"]
    return {
        "mel": mel, "frame_mask": torch.arange(mel.shape[1])[None] < lens[:, None], "frame_lens": lens,
        "units": [x["units"] for x in good], "durations": durations,
        "speakers": [x["speaker"] for x in good], "langs": [x["lang"] for x in good],
        "texts": [x["text"] for x in good], "audio": [x["audio"] for x in good],
    }


def mel_stats(mels: list[Tensor]) -> tuple[float, float]:
    """Global mean and standard deviation of log-mel frames over every frame and band."""
    flat = torch.cat([m.reshape(-1).double() for m in mels])
    return float(flat.mean()), float(flat.std())


class TTSDataModule(L.LightningDataModule):
    """Reads aligned JSONL manifests (``data/tts_align`` from the suite's aligner, or a user's own) for TTS."""

    def __init__(
        self,
        train_manifest: str | None = None,
        val_manifest: str | None = None,
        test_manifest: str | None = None,
        audio_root: str | None = None,
        max_frames: int = 400,
        max_batch_frames: int = 6000,
        max_batch_size: int | None = None,
        num_buckets: int = 20,
        shuffle: bool = True,
        num_workers: int = 2,
        seed: int = 0,
        bad_audio_log: str | None = None,
        stats_utterances: int = 100,
        mel_stats: list[float] | None = None,
    ):
        super().__init__()
        self.save_hyperparameters(logger=False)
        self._rows: dict[str, list[dict[str, Any]]] = {}
        self._stats: tuple[float, float] | None = tuple(mel_stats) if mel_stats else None  # type: ignore[assignment]

    @property
    def hp(self) -> Any:
        """The constructor arguments (``self.hparams`` typed loosely for attribute access)."""
        return self.hparams

    def rows(self, stage: str) -> list[dict[str, Any]]:
        """The rows of a split (``ManifestError`` naming file and row for a missing or broken alignment)."""
        if stage not in self._rows:
            manifest = self.hparams[f"{stage}_manifest"]
            if not manifest:
                raise ValueError(f"data.{stage}_manifest is not set")
            self._rows[stage] = read_aligned(manifest, self.hp.audio_root)
        return self._rows[stage]

    def units(self) -> list[str]:
        """Every unit of the training rows, sorted."""
        return sorted({u for r in self.rows("train") for u in r["units"]})

    def langs(self) -> list[str]:
        return sorted({str(r.get("lang", "und")) for r in self.rows("train")})

    def mel_stats(self) -> tuple[float, float]:
        """Mean and std of the log-mel frames of up to ``stats_utterances`` training utterances (or ``mel_stats``)."""
        if self._stats is None:
            rows = self.rows("train")
            pick = np.random.default_rng(self.hp.seed).permutation(len(rows))[: max(self.hp.stats_utterances, 1)]
            ds = TTSDataset([rows[i] for i in pick], max_frames=10**9, train=False)
            mels = [x["mel"] for x in (ds[i] for i in range(len(ds))) if x is not None]
            if not mels:
                raise ValueError(f"{self.hp.train_manifest}: no readable training utterance for the mel statistics")
            self._stats = mel_stats(mels)
            log.info("log-mel mean %.3f, std %.3f over %d utterances", *self._stats, len(mels))
        return self._stats

    def model_kwargs(self) -> dict[str, Any]:
        """What the module needs from the data before it can be built."""
        mean, std = self.mel_stats()
        return {"units": self.units(), "langs": self.langs(), "mel_mean": mean, "mel_std": std}

    def _loader(self, stage: str, train: bool) -> DataLoader:
        rows = self.rows(stage)
        frames = [min(sum(r["durations"]), self.hp.max_frames) for r in rows]
        trainer = self.trainer
        sampler = DurationBatchSampler(
            frames, self.hp.max_batch_frames, self.hp.max_batch_size, num_buckets=self.hp.num_buckets,
            shuffle=train and self.hp.shuffle, seed=self.hp.seed, rank=trainer.global_rank if trainer else 0,
            world_size=trainer.world_size if trainer else 1,
        )
        ds = TTSDataset(rows, self.hp.max_frames, train, self.hp.bad_audio_log, stage)
        workers = self.hp.num_workers
        return DataLoader(ds, batch_sampler=sampler, collate_fn=collate_tts, num_workers=workers,
                          persistent_workers=workers > 0, pin_memory=torch.cuda.is_available())

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)
