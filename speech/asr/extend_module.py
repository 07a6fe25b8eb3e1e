"""LightningModule and batch plan of few-shot language extension: CTC on one language's adapter, base frozen."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from typing import Any

import lightning as L
import numpy as np
import soxr
import torch
import torch.nn.functional as F
from torch import Tensor

from common.optim import adamw_warmup_cosine, decay_groups
from speech.asr.adapters import AdaptedCTCModel
from speech.audio import SAMPLE_RATE
from speech.features import pad_waves
from text.char_vocab import CharVocab

Example = tuple[np.ndarray, str, str]
"""(16 kHz waveform, normalised transcript, language)."""
BatchSpec = tuple[list[int], list[float]]
"""Utterance indices of one step and the speed factor of each."""
Batch = tuple[Tensor, Tensor, Tensor, Tensor]
"""(wave [B, S], wave lengths [B], padded targets [B, L], target lengths [B])."""
BASE = "model.base."


def batch_plan(n: int, batch_size: int, speeds: Sequence[float], seed: int) -> Iterator[BatchSpec]:
    """Endless batches: random permutations of the ``n`` utterances back to back, a batch may span two of them."""
    rng = random.Random(seed)
    order: list[int] = []
    while True:
        if len(order) < batch_size:
            order += rng.sample(range(n), n)
        idx, order = order[:batch_size], order[batch_size:]
        yield idx, [rng.choice(speeds) if speeds else 1.0 for _ in idx]


def build_batch(examples: Sequence[Example], vocab: CharVocab, spec: BatchSpec) -> Batch:
    """Speed-perturbed, padded waves and encoded transcripts of one planned batch."""
    idx, speeds = spec
    waves = []
    for i, f in zip(idx, speeds):
        w = examples[i][0]
        # Playing at speed f: treat the signal as sampled at 16k*f and resample to 16k.
        waves.append(soxr.resample(w, int(SAMPLE_RATE * f), SAMPLE_RATE).astype(np.float32) if f != 1.0 else w)
    wave, lens = pad_waves(waves)
    targets = [torch.tensor(vocab.encode(examples[i][1])) for i in idx]
    tl = torch.tensor([len(t) for t in targets])
    return wave, lens, torch.nn.utils.rnn.pad_sequence(targets, batch_first=True), tl


class AdapterExtensionModule(L.LightningModule):
    """Trains ``lang``'s adapter (LoRA deltas and head rows) with CTC; the base network stays frozen in eval mode.

    Checkpoints leave the frozen base out (it is the model directory the run started from), so they stay small.
    """

    def __init__(self, model: AdaptedCTCModel, lang: str, blank_id: int, lr: float = 5e-3,
                 weight_decay: float = 1e-2, warmup: int = 6, floor: float = 0.05, print_every: int = 25):
        super().__init__()
        if lang not in model.adapters:
            raise ValueError(f"the model has no adapter for {lang}; call add_language first")
        self.model, self.lang, self.blank_id = model, lang, blank_id
        self.lr, self.weight_decay, self.warmup, self.floor = lr, weight_decay, warmup, floor
        self.print_every = print_every
        self.losses: list[float] = []
        self._start = time.time()

    def on_train_start(self) -> None:
        self._start = time.time()

    def train(self, mode: bool = True) -> AdapterExtensionModule:
        super().train(mode)
        self.model.base.eval()  # frozen: no dropout; SpecAugment on the routed items stays on
        return self

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        wave, lens, targets, tl = batch
        logp, out_lens = self.model(wave, lens, [self.lang] * wave.shape[0])  # [B, T, V]
        loss = F.ctc_loss(logp.float().transpose(0, 1), targets, out_lens, tl, blank=self.blank_id,
                          zero_infinity=True)
        self.log("train/loss", loss, batch_size=wave.shape[0])
        self.losses.append(loss.item())
        step, last = self.global_step, self.trainer.max_steps - 1
        if self.print_every and (step % self.print_every == 0 or step == last) and self.trainer.is_global_zero:
            print(f"step {step:4d} loss {self.losses[-1]:.3f} ({time.time() - self._start:.0f} s)", flush=True)
        return loss

    def configure_optimizers(self) -> Any:
        groups = decay_groups(self.model.adapters[self.lang].named_parameters(), self.weight_decay)
        return adamw_warmup_cosine(self, groups, self.lr, (0.9, 0.999), self.warmup, self.floor)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if not k.startswith(BASE)}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        want = {k for k in self.state_dict() if not k.startswith(BASE)}
        got = set(checkpoint["state_dict"])
        if got != want:
            diff = sorted(want ^ got)
            raise ValueError(f"checkpoint does not match this run's adapters ({len(diff)} keys differ, e.g. "
                             f"{', '.join(diff[:3])}): resume with the same model, lang and rank")
        checkpoint["state_dict"] = {**{k: v for k, v in self.state_dict().items() if k.startswith(BASE)},
                                    **checkpoint["state_dict"]}
