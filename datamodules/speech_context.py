"""Speech batches with in-context examples: each utterance may carry a few others of its language."""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from datamodules.speech import SpeechDataModule, SpeechDataset, collate_speech


class ContextSpeechDataset(Dataset):
    """A ``SpeechDataset`` whose items get 1..``max_examples`` short same-language examples with probability ``prob``.

    Examples come from the same split's short utterances (at most ``max_seconds``), never the item itself;
    the draw uses the process-wide ``random`` state, which Lightning seeds per worker.
    """

    def __init__(self, base: SpeechDataset, prob: float, max_examples: int, max_seconds: float):
        self.base, self.prob, self.max_examples = base, prob, max_examples
        self.pool: dict[str, list[int]] = defaultdict(list)
        for i, row in enumerate(base.rows):
            if float(row.get("duration", max_seconds)) <= max_seconds:
                self.pool[row.get("lang", "und")].append(i)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> dict[str, Any] | None:
        item = self.base[i]
        if item is None:
            return None
        context: list[dict[str, Any]] = []
        pool = [j for j in self.pool.get(item["lang"], []) if j != i]
        if pool and self.max_examples > 0 and random.random() < self.prob:
            for j in random.sample(pool, min(len(pool), random.randint(1, self.max_examples))):
                ex = self.base[j]
                if ex is not None and ex["text"]:
                    context.append(ex)
        item["context"] = context
        return item


def collate_context(items: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """``collate_speech`` plus the examples of every item, padded into one ``ctx_wave`` batch.

    ``ctx_counts[b]`` examples belong to item ``b``, in order.
    """
    good = [x for x in items if x is not None]
    batch = collate_speech(list(items))
    if batch is None:
        return None
    ctx = [c for x in good for c in x.get("context", [])]
    batch["ctx_counts"] = [len(x.get("context", [])) for x in good]
    batch["ctx_wave_lens"] = torch.tensor([len(c["wave"]) for c in ctx], dtype=torch.long)
    batch["ctx_wave"] = torch.zeros(len(ctx), int(batch["ctx_wave_lens"].max()) if ctx else 0)
    for i, c in enumerate(ctx):
        batch["ctx_wave"][i, : len(c["wave"])] = c["wave"]
    batch["ctx_texts"] = [c["text"] for c in ctx]
    batch["ctx_langs"] = [c["lang"] for c in ctx]
    return batch


class SpeechContextDataModule(SpeechDataModule):
    """``SpeechDataModule`` for LLM-ASR: byte targets (no character vocabulary) and in-context examples in training."""

    def __init__(self, *args: Any, context_prob: float = 0.5, context_max_examples: int = 3,
                 context_max_seconds: float = 3.0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.save_hyperparameters(logger=False)

    def model_kwargs(self) -> dict[str, Any]:
        return {"langs": self.langs()}

    def _loader(self, stage: str, train: bool) -> DataLoader:
        rows = self.rows(stage)
        sampler = self.batch_sampler(rows, train)
        base = SpeechDataset(rows, None, self.hp.speed_perturb if train else None, self.hp.bad_audio_log, stage)
        ds = ContextSpeechDataset(base, self.hp.context_prob if train else 0.0, self.hp.context_max_examples,
                                  self.hp.context_max_seconds)
        workers = self.hp.num_workers
        return DataLoader(ds, batch_sampler=sampler, collate_fn=collate_context, num_workers=workers,
                          persistent_workers=workers > 0, pin_memory=torch.cuda.is_available())
