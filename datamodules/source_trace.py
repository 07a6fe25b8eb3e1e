"""Source-tracing data: a protocol directory's train/dev/test manifests, random crops, channel augmentation, mixup.

A corpus (``python scripts/make_corpus.py corpus=deepfake``, or a user's own in the same format) holds ``all.jsonl``
and ``protocols/<name>/{train,dev,test}.jsonl`` + ``protocol.json``; audio paths are relative to the corpus dir.
Rows carry ``id``, ``audio``, ``source`` and ``family`` (and ``lang``, ``speaker``, ``channel`` for the reports).
``protocol.json`` names the known sources and families (the heads' classes); a test row of another source is the
"unknown" class (label -1). A protocol without its own train.jsonl reads that of ``train_from``.

Training items are random crops of ``crop_seconds`` (shorter clips looped), augmented against shortcuts: reverb,
noise, a codec or channel from speech.channels (never one the protocol holds out), gain, and mixup of whole batches.
Dev and test items are the first ``eval_seconds`` of each clip, zero-padded into batches.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from common.io import read_json_object
from datamodules.bucketing import DurationBatchSampler
from datamodules.manifest import ManifestError, read_manifest
from datamodules.speech import report_bad
from speech.audio import SAMPLE_RATE, AudioError, load_audio
from speech.augment import add_noise, apply_gain, coloured_noise, limit_peak, reverberate, synthetic_rir
from speech.channels import CHANNELS, apply_channel
from speech.features import pad_waves

log = logging.getLogger(__name__)
SPLITS = {"train": "train", "val": "dev", "test": "test"}
META = ("id", "source", "family", "lang", "speaker", "channel")


@dataclass
class TraceAugmentConfig:
    """Chances and ranges of the training augmentation (on by default: generated corpora invite shortcuts)."""

    reverb_prob: float = 0.2
    """Chance of a synthetic room impulse response."""
    rt60: tuple[float, float] = (0.2, 0.7)
    """Reverberation time range (s)."""
    noise_prob: float = 0.3
    """Chance of additive white, pink or brown noise."""
    snr_db: tuple[float, float] = (10.0, 35.0)
    """Signal-to-noise ratio range (dB)."""
    codec_prob: float = 0.3
    """Chance of one channel of ``codecs`` (an ffmpeg codec round trip, resampling, ...; speech.channels)."""
    codecs: list[str] = field(default_factory=lambda: ["mp3_24k", "opus_16k", "aac_32k", "resample_8k"])
    """Channel names of speech.channels.CHANNELS drawn from; the protocol's held-out channels are always left out."""
    gain_prob: float = 0.3
    """Chance of a random gain."""
    gain_db: tuple[float, float] = (-12.0, 6.0)
    """Gain range (dB)."""
    mixup_prob: float = 0.2
    """Chance that a training batch is mixed with a shuffled copy of itself (both labels weighted in the loss)."""
    mixup_alpha: float = 0.4
    """Beta(alpha, alpha) of the mixing weight."""

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> TraceAugmentConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d or {}) - known)
        if unknown:
            raise ValueError(f"data.augment: unknown keys {unknown}; known: {sorted(known)}")
        kwargs: dict[str, Any] = {k: tuple(v) if isinstance(v, list) and k != "codecs" else v
                                  for k, v in (d or {}).items()}
        out = cls(**kwargs)
        for f in fields(cls):
            if f.name.endswith("_prob") and not 0.0 <= getattr(out, f.name) <= 1.0:
                raise ValueError(f"data.augment.{f.name}={getattr(out, f.name)}: a probability must be in [0, 1]")
        return out


class TraceAugment:
    """Reverb, noise, a channel and gain on one wave, each with its chance."""

    def __init__(self, cfg: TraceAugmentConfig, held_out_channels: list[str]):
        self.cfg = cfg
        unknown = sorted(set(cfg.codecs) - set(CHANNELS))
        if unknown:
            raise ValueError(f"data.augment.codecs: unknown channels {unknown}; known: {sorted(CHANNELS)}")
        self.codecs = [c for c in cfg.codecs if c not in set(held_out_channels)]

    def __call__(self, wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        c = self.cfg
        if c.reverb_prob and rng.random() < c.reverb_prob:
            wave = reverberate(wave, synthetic_rir(rng.uniform(*c.rt60), rng.uniform(0.0, 12.0), rng))
        if c.noise_prob and rng.random() < c.noise_prob:
            noise = coloured_noise(len(wave), float(rng.choice([0.0, 1.0, 2.0])), rng)
            wave = add_noise(wave, noise, rng.uniform(*c.snr_db))
        if self.codecs and c.codec_prob and rng.random() < c.codec_prob:
            out = apply_channel(wave, SAMPLE_RATE, str(rng.choice(self.codecs)), rng)
            wave = np.asarray(out, dtype=np.float32)[: len(wave)] if len(out) else wave
        if c.gain_prob and rng.random() < c.gain_prob:
            wave = apply_gain(wave, rng.uniform(*c.gain_db))
        return limit_peak(wave.astype(np.float32))


class TraceDataset(Dataset):
    """Rows to ``{wave, source, family, meta}``; an unreadable file yields ``None`` (and a line in the bad log)."""

    def __init__(self, rows: list[dict[str, Any]], sources: list[str], families: list[str], stage: str,
                 crop: int | None, bad_log: str | None, augment: TraceAugment | None = None):
        self.rows, self.stage, self.crop, self.bad_log, self.augment = rows, stage, crop, bad_log, augment
        self.source_ids = {s: i for i, s in enumerate(sources)}
        self.family_ids = {s: i for i, s in enumerate(families)}
        self._rng: tuple[int, np.random.Generator] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def rng(self) -> np.random.Generator:
        if self._rng is None or self._rng[0] != os.getpid():  # one generator per worker process
            self._rng = (os.getpid(), np.random.default_rng(torch.initial_seed() % 2**32))
        return self._rng[1]

    def __getitem__(self, i: int) -> dict[str, Any] | None:
        row = self.rows[i]
        try:
            wave = load_audio(row["audio"])
        except AudioError as e:
            report_bad(self.bad_log, row["audio_raw"], e.reason, self.stage)
            return None
        if self.stage == "train" and self.crop:
            rng = self.rng()
            if len(wave) < self.crop:
                wave = np.tile(wave, self.crop // len(wave) + 1)
            start = int(rng.integers(0, len(wave) - self.crop + 1))
            wave = wave[start : start + self.crop]
            if self.augment is not None:
                wave = self.augment(wave, rng)
        elif self.crop:
            wave = wave[: self.crop]
        return {"wave": torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)),
                "source": self.source_ids.get(row["source"], -1), "family": self.family_ids.get(row["family"], -1),
                "meta": {k: str(row.get(k, "")) for k in META}}


class Collate:
    """Pads a batch; with ``mixup`` set, a training batch may be mixed with a shuffled copy of itself."""

    def __init__(self, mixup_prob: float = 0.0, mixup_alpha: float = 0.4):
        self.mixup_prob, self.mixup_alpha = mixup_prob, mixup_alpha

    def __call__(self, items: list[dict[str, Any] | None]) -> dict[str, Any] | None:
        good = [x for x in items if x is not None]
        if not good:
            return None
        wave, lens = pad_waves([x["wave"] for x in good])
        batch = {"wave": wave, "wave_lens": lens, "source": torch.tensor([x["source"] for x in good]),
                 "family": torch.tensor([x["family"] for x in good]),
                 "meta": {k: [x["meta"][k] for x in good] for k in META}}
        if self.mixup_prob and len(good) > 1 and float(torch.rand(())) < self.mixup_prob:
            lam = float(np.random.default_rng(int(torch.randint(0, 2**31, ()))).beta(self.mixup_alpha,
                                                                                      self.mixup_alpha))
            perm = torch.randperm(len(good))
            batch["wave"] = lam * wave + (1 - lam) * wave[perm]
            batch["mix"] = (perm, lam)
        return batch


class FullBatches(DurationBatchSampler):
    """Training batches without the short remainder, as ``drop_last``: a batch of one clip breaks batch norm. It is
    dropped before the batches go to the ranks, so every rank still steps as often as the others."""

    def _global_batches(self) -> list[list[int]]:
        batches = super()._global_batches()
        return [b for b in batches if len(b) == self.max_batch_size] or batches


class BalancedBatches(FullBatches):
    """Full training batches drawn with replacement, each clip with a chance inversely proportional to the size of
    its source, so every source is about equally often in a batch (the corpus spreads a source's clips over the
    languages it speaks, so in one language the sources differ several-fold). An epoch has as many clips as the
    split; the draw follows the seed and epoch, the same on every rank."""

    def __init__(self, labels: list[str], batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1):
        super().__init__([1.0] * len(labels), float("inf"), batch_size, num_buckets=1, seed=seed, rank=rank,
                         world_size=world_size)
        counts = Counter(labels)
        weights = np.array([1.0 / counts[x] for x in labels])
        self.weights = weights / weights.sum()

    def _global_batches(self) -> list[list[int]]:
        rng = np.random.default_rng(self.seed + self.epoch)
        draw = rng.choice(len(self.weights), size=len(self.weights), p=self.weights).tolist()
        size = min(int(self.max_batch_size or len(draw)), len(draw))
        return [draw[i : i + size] for i in range(0, len(draw) - size + 1, size)]


class SourceTraceDataModule(L.LightningDataModule):
    """A protocol of a source-tracing corpus for ``experiment=source_trace``."""

    def __init__(self, corpus_dir: str, protocol: str = "main", crop_seconds: float = 3.0, eval_seconds: float = 4.0,
                 batch_size: int = 32, eval_batch_size: int = 32, num_workers: int = 2, min_seconds: float = 0.2,
                 bad_audio_log: str | None = None, augment: dict[str, Any] | None = None, seed: int = 0,
                 test_manifest: str | None = None, balance: bool = True):
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.corpus_dir = Path(corpus_dir)
        self.protocol_dir = self.corpus_dir / "protocols" / protocol
        # scripts/train.py tests after training when the data names a test manifest: by default the protocol's.
        self.hparams["test_manifest"] = test_manifest or str(self.protocol_dir / "test.jsonl")
        self.augment_cfg = TraceAugmentConfig.from_dict(augment)
        self._rows: dict[str, list[dict[str, Any]]] = {}
        self._info: dict[str, Any] | None = None
        self._classes: tuple[list[str], list[str]] | None = None

    @property
    def info(self) -> dict[str, Any]:
        """protocol.json (empty when the protocol directory has none)."""
        if self._info is None:
            path = self.protocol_dir / "protocol.json"
            if not self.protocol_dir.is_dir():
                raise FileNotFoundError(f"{self.protocol_dir}: no such protocol directory (build the corpus: "
                                        "python scripts/make_corpus.py corpus=deepfake)")
            self._info = read_json_object(path) if path.is_file() else {}
        return self._info

    def manifest(self, stage: str) -> Path:
        """The manifest of a stage (train/val/test), following ``train_from`` for a shared training split."""
        if stage == "test":
            return Path(self.hparams["test_manifest"])
        path = self.protocol_dir / f"{SPLITS[stage]}.jsonl"
        if stage == "train" and not path.is_file() and self.info.get("train_from"):
            path = self.corpus_dir / "protocols" / str(self.info["train_from"]) / "train.jsonl"
        return path

    def rows(self, stage: str) -> list[dict[str, Any]]:
        """The split's rows, audio resolved against the corpus dir; a row without source or family is an error."""
        if stage not in self._rows:
            path = self.manifest(stage)
            rows = read_manifest(path, resolve_paths=False)
            for n, row in enumerate(rows, start=1):
                missing = [k for k in ("id", "source", "family") if not row.get(k)]
                if missing:
                    raise ManifestError(f"{path}: row {n} ({row['audio_raw']}) lacks {', '.join(missing)}")
                audio = Path(row["audio"]).expanduser()
                row["audio"] = str(audio if audio.is_absolute() else self.corpus_dir / audio)
            short = [r for r in rows if float(r.get("duration", 1e9)) < self.hparams["min_seconds"]]
            for r in short:
                report_bad(self.hparams["bad_audio_log"], r["audio_raw"],
                           f"shorter than {self.hparams['min_seconds']} s", stage)
            self._rows[stage] = [r for r in rows if r not in short]
        return self._rows[stage]

    def set_classes(self, sources: list[str], families: list[str]) -> None:
        """Label by a trained model's classes (evaluation); rows of other sources or families become -1."""
        self._classes = (list(sources), list(families))

    def sources(self) -> list[str]:
        """Known sources: a model's (set_classes), else protocol.json's list, else those of the training split."""
        if self._classes:
            return self._classes[0]
        return list(self.info.get("known_sources") or sorted({r["source"] for r in self.rows("train")}))

    def families(self) -> list[str]:
        if self._classes:
            return self._classes[1]
        return list(self.info.get("known_families") or sorted({r["family"] for r in self.rows("train")}))

    def model_kwargs(self) -> dict[str, Any]:
        return {"sources": self.sources(), "families": self.families()}

    def held_out_channels(self) -> list[str]:
        return list((self.info.get("held_out") or {}).get("channels") or [])

    def _dataset(self, stage: str) -> TraceDataset:
        train = stage == "train"
        rows = self.rows(stage)
        if train:
            unknown = sorted({r["source"] for r in rows} - set(self.sources()))
            if unknown:
                raise ManifestError(f"{self.manifest(stage)}: training sources {unknown} are not in "
                                    f"{self.protocol_dir / 'protocol.json'} known_sources")
        seconds = self.hparams["crop_seconds"] if train else self.hparams["eval_seconds"]
        crop = int(seconds * SAMPLE_RATE) if seconds else None
        aug = TraceAugment(self.augment_cfg, self.held_out_channels()) if train else None
        return TraceDataset(rows, self.sources(), self.families(), stage, crop, self.hparams["bad_audio_log"], aug)

    def batch_sampler(self, stage: str) -> DurationBatchSampler:
        """Batches sharded over the trainer's ranks (the trainer leaves Lightning's distributed sampler off): every
        rank takes every world_size-th batch of one global order. Training crops are all one length, so its batches
        are plain shuffled ones (without the short remainder: FullBatches), or source-balanced draws
        (BalancedBatches, ``balance``); dev and test batches follow the clips sorted by length (least padding)."""
        train = stage == "train"
        hp = self.hparams
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer else (0, 1)
        if train and hp["balance"]:
            return BalancedBatches([r["source"] for r in self.rows(stage)], hp["batch_size"], hp["seed"], rank, world)
        sampler = FullBatches if train else DurationBatchSampler
        if train:
            durations, size = [1.0] * len(self.rows(stage)), hp["batch_size"]
        else:
            cap = hp["eval_seconds"] or float("inf")
            durations = [min(float(r.get("duration", cap)), cap) for r in self.rows(stage)]
            size = hp["eval_batch_size"]
        return sampler(durations, float("inf"), size, num_buckets=1, shuffle=train, seed=hp["seed"], rank=rank,
                       world_size=world)

    def _loader(self, stage: str) -> DataLoader:
        train = stage == "train"
        workers = self.hparams["num_workers"]
        collate = Collate(self.augment_cfg.mixup_prob, self.augment_cfg.mixup_alpha) if train else Collate()
        return DataLoader(self._dataset(stage), batch_sampler=self.batch_sampler(stage), collate_fn=collate,
                          num_workers=workers, persistent_workers=workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")
