"""Post-hoc training of a LID head on a frozen CTC model: encoder frames cached once, random 1-4 s crops."""

from __future__ import annotations

import logging
import os
import random
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from common.fit import FitSettings, StepStream
from common.fit import fit as run_fit
from datamodules.manifest import read_manifest
from speech.asr.lid import LIDConfig, LIDHead, capture_hidden
from speech.asr.lid_module import LIDHeadModule
from speech.audio import SAMPLE_RATE, AudioError, load_audio
from speech.features import frame_samples_of, pad_waves

log = logging.getLogger(__name__)


@dataclass
class LIDTrainConfig:
    """How the head is fitted on cached encoder frames."""

    epochs: int = 30
    """Passes over the training clips (one random crop of each per pass)."""
    batch_size: int = 64
    """Crops per optimiser step."""
    lr: float = 2e-3
    """AdamW learning rate (cosine decay to zero)."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    min_crop_seconds: float = 1.0
    """Shortest training crop, so short segments are recognised too."""
    max_crop_seconds: float = 4.0
    """Longest training crop."""
    full_prob: float = 0.25
    """Chance that a training example is the whole clip instead of a crop."""
    max_per_lang: int | None = None
    """Training clips kept per language (a seeded random subset); None keeps all."""
    encode_batch: int = 16
    """Clips per encoder forward while caching."""
    seed: int = 0
    """Seed of the subset, the crops and the initialisation."""


@dataclass
class Cached:
    """Encoder frames of labelled clips, kept in memory as float16."""

    frames: list[Tensor]
    """Per clip [T_i, D]."""
    labels: list[str]
    """Language of each clip."""


@torch.inference_mode()
def encode_clips(model: nn.Module, waves: Sequence[np.ndarray], device: str | torch.device = "cpu",
                 batch: int = 16) -> list[Tensor]:
    """Encoder frames [T_i, D] of each waveform, through the model's own forward (language-agnostic path)."""
    order = sorted(range(len(waves)), key=lambda i: len(waves[i]))
    out: list[Tensor] = [torch.empty(0)] * len(waves)
    for s in range(0, len(order), batch):
        idx = order[s : s + batch]
        wave, lens = pad_waves([waves[i] for i in idx])
        with capture_hidden(model) as seen:
            _, out_lens = model(wave.to(device), lens.to(device))
        for j, i in enumerate(idx):
            out[i] = seen[-1][j, : int(out_lens[j])].to("cpu", torch.float16)
    return out


def cache_manifest(model: nn.Module, manifest: str | os.PathLike[str], device: str | torch.device = "cpu",
                   max_per_lang: int | None = None, seed: int = 0, batch: int = 16) -> Cached:
    """Read, (sub)sample and encode a manifest's clips; rows without ``lang`` or with bad audio are skipped."""
    rows = [r for r in read_manifest(manifest) if r.get("lang")]
    if not rows:
        raise ValueError(f"{manifest}: no rows with a 'lang' field; language ID needs labelled clips")
    if max_per_lang is not None:
        by_lang: dict[str, list[dict]] = defaultdict(list)
        for r in rows:
            by_lang[r["lang"]].append(r)
        rng = random.Random(seed)
        rows = [r for lang in sorted(by_lang) for r in rng.sample(by_lang[lang], min(max_per_lang, len(by_lang[lang])))]
    waves, labels = [], []
    for r in rows:
        try:
            waves.append(load_audio(r["audio"]))
            labels.append(str(r["lang"]))
        except AudioError as e:
            log.warning("skipping %s", e)
    return Cached(encode_clips(model, waves, device, batch), labels)


CropPlan = list[tuple[int, int, int]]
"""One batch of the plan: (clip, first frame, frame count) of each crop."""


def _crop_span(t: int, lo: int, hi: int, full_prob: float, rng: random.Random) -> tuple[int, int]:
    if rng.random() < full_prob or t <= lo:
        return 0, t
    n = rng.randint(lo, min(hi, t))
    return rng.randint(0, t - n), n


def crop_plan(lengths: Sequence[int], epochs: int, batch_size: int, lo: int, hi: int, full_prob: float,
              seed: int) -> Iterator[CropPlan]:
    """Every epoch a fresh shuffle of the clips, cut into batches of one random crop (or the whole clip) each."""
    rng = random.Random(seed)
    for _ in range(epochs):
        order = list(range(len(lengths)))
        rng.shuffle(order)
        for s in range(0, len(order), batch_size):
            yield [(i, *_crop_span(lengths[i], lo, hi, full_prob, rng)) for i in order[s : s + batch_size]]


def _batch(frames: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    lens = torch.tensor([f.shape[0] for f in frames])
    x = torch.zeros(len(frames), int(lens.max()), frames[0].shape[-1])  # [B, T, D]
    for i, f in enumerate(frames):
        x[i, : len(f)] = f.float()
    return x, lens


@torch.no_grad()
def evaluate(head: LIDHead, data: Cached, crop_frames: int | None = None, batch: int = 128) -> float:
    """Accuracy on whole clips, or on each clip's centre crop of ``crop_frames``."""
    head.eval()
    device = next(head.parameters()).device
    index = {lang: i for i, lang in enumerate(head.cfg.langs)}
    right = 0
    for s in range(0, len(data.frames), batch):
        clips = data.frames[s : s + batch]
        if crop_frames is not None:
            clips = [f[max(0, (len(f) - crop_frames) // 2) :][:crop_frames] for f in clips]
        x, lens = _batch(clips)
        pred = head(x.to(device), lens.to(device)).argmax(-1).tolist()
        right += sum(p == index.get(lang, -1) for p, lang in zip(pred, data.labels[s : s + batch]))
    return right / max(1, len(data.frames))


def train_head(train: Cached, dev: Cached | None, frame_seconds: float, cfg: LIDTrainConfig,
               langs: Sequence[str] | None = None, fit: FitSettings | None = None) -> tuple[LIDHead, dict[str, float]]:
    """Fit a head on cached frames under Lightning; keep the epoch with the best dev accuracy (whole clips and 2 s
    crops). ``fit`` sets devices, precision, the run folder (checkpoints, CSV logs) and what to resume from."""
    torch.manual_seed(cfg.seed)
    langs = sorted(set(train.labels)) if langs is None else list(langs)
    if len(langs) < 2:
        raise ValueError(f"language ID needs at least two languages in the training manifest, got {langs}")
    head = LIDHead(LIDConfig(d_model=int(train.frames[0].shape[-1]), langs=langs))
    y = torch.tensor([langs.index(lang) for lang in train.labels])
    counts = Counter(train.labels)
    weight = torch.tensor([len(train.labels) / (len(langs) * counts[lang]) if counts[lang] else 0.0 for lang in langs])
    per_epoch = -(-len(y) // cfg.batch_size)
    lo, hi = (max(1, round(s / frame_seconds)) for s in (cfg.min_crop_seconds, cfg.max_crop_seconds))
    two_s = max(1, round(2.0 / frame_seconds))

    def scores(h: LIDHead) -> dict[str, float]:
        assert dev is not None
        return {"dev_acc": evaluate(h, dev), "dev_acc_2s": evaluate(h, dev, two_s)}

    def build(plan: CropPlan) -> tuple[Tensor, Tensor, Tensor]:
        x, lens = _batch([train.frames[i][s : s + n] for i, s, n in plan])
        return x, lens, y[[i for i, _, _ in plan]]

    module = LIDHeadModule(head, weight, per_epoch, cfg.epochs, len(y), cfg.lr, cfg.weight_decay,
                           scores if dev is not None else None)
    lengths = [int(f.shape[0]) for f in train.frames]
    stream = StepStream(lambda: crop_plan(lengths, cfg.epochs, cfg.batch_size, lo, hi, cfg.full_prob, cfg.seed), build)
    module.train()
    run_fit(module, stream, fit or FitSettings(), max_steps=cfg.epochs * per_epoch)
    return module.best_head()


def frame_seconds_of(model: nn.Module, device: str | torch.device = "cpu") -> float:
    """Seconds per encoder frame, measured from the frame counts of two input lengths."""
    def frame_counts(waves: list[np.ndarray]) -> Tensor:
        wave, lens = pad_waves(waves)
        with torch.inference_mode():
            return model(wave.to(device), lens.to(device))[1].cpu()

    return frame_samples_of(frame_counts) / SAMPLE_RATE
