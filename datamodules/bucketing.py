"""Length-bucketed dynamic batching by total padded seconds."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class DurationBatchSampler(Sampler[list[int]]):
    """Batches of similar length whose padded size stays under ``max_batch_seconds``.

    Items are sorted by duration into ``num_buckets`` quantile buckets; each bucket is shuffled
    and cut greedily so that ``len(batch) * longest <= max_batch_seconds``. Under DDP each rank
    takes every ``world_size``-th batch of the same global order, so ranks never overlap and
    all see the same number of batches. For the first ``sorted_epochs`` epochs, batches come
    shortest first.
    """

    def __init__(
        self,
        durations: Sequence[float],
        max_batch_seconds: float,
        max_batch_size: int | None = None,
        num_buckets: int = 30,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        sorted_epochs: int = 0,
    ):
        self.durations = np.asarray(durations, dtype=np.float64)
        self.max_batch_seconds = float(max_batch_seconds)
        self.max_batch_size = max_batch_size
        self.num_buckets = max(1, num_buckets)
        self.shuffle = shuffle
        self.seed = seed
        self.rank, self.world_size = rank, world_size
        self.sorted_epochs = sorted_epochs
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _global_batches(self) -> list[list[int]]:
        rng = np.random.default_rng(self.seed + self.epoch)
        order = np.argsort(self.durations, kind="stable")
        batches: list[list[int]] = []
        for bucket in np.array_split(order, min(self.num_buckets, max(len(order), 1))):
            if self.shuffle:
                bucket = rng.permutation(bucket)
            batch: list[int] = []
            longest = 0.0
            for i in bucket.tolist():
                new_longest = max(longest, self.durations[i])
                full = self.max_batch_size is not None and len(batch) >= self.max_batch_size
                if batch and (full or (len(batch) + 1) * new_longest > self.max_batch_seconds):
                    batches.append(batch)
                    batch, new_longest = [], self.durations[i]
                batch.append(i)
                longest = new_longest
            if batch:
                batches.append(batch)
        if self.epoch < self.sorted_epochs:
            # SortaGrad (Amodei et al., 2016): short batches first while CTC finds its alignments.
            batches.sort(key=lambda b: float(self.durations[b].max()))
        elif self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def _rank_batches(self) -> list[list[int]]:
        batches = self._global_batches()
        if self.world_size > 1:
            per_rank = -(-len(batches) // self.world_size)
            # Pad by repeating early batches so every rank steps the same number of times
            # (cycling, in case there are fewer batches than ranks).
            pad = per_rank * self.world_size - len(batches)
            batches = batches + [batches[i % len(batches)] for i in range(pad)]
            batches = batches[self.rank :: self.world_size]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._rank_batches())

    def __len__(self) -> int:
        return len(self._rank_batches())


def padding_fraction(batches: Sequence[Sequence[int]], durations: Sequence[float]) -> float:
    """Share of the padded batch area that is padding."""
    d = np.asarray(durations, dtype=np.float64)
    padded = sum(len(b) * d[list(b)].max() for b in batches if len(b))
    real = sum(d[list(b)].sum() for b in batches if len(b))
    return float(1.0 - real / max(padded, 1e-9))


def fixed_size_batches(n: int, batch_size: int, seed: int = 0) -> list[list[int]]:
    """Shuffled fixed-size batches, the baseline that bucketing is measured against."""
    order = np.random.default_rng(seed).permutation(n).tolist()
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]
