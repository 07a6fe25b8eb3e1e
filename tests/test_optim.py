"""The shared optimiser pieces: warm-up/cosine multiplier and weight-decay groups."""

from __future__ import annotations

import pytest
from torch import nn

from common.optim import decay_groups, time_progress, warmup_cosine


def test_warmup_then_cosine_to_the_floor_by_steps_or_time() -> None:
    assert warmup_cosine(0, 10, 100, 0.1) == pytest.approx(0.1)
    assert warmup_cosine(9, 10, 100, 0.1) == pytest.approx(1.0)
    assert warmup_cosine(10, 10, 100, 0.1) == pytest.approx(1.0)
    assert warmup_cosine(55, 10, 100, 0.1) == pytest.approx(0.55)  # half way: mid-point of the cosine
    assert warmup_cosine(100, 10, 100, 0.1) == pytest.approx(0.1)
    # A wall-time budget that is nearly spent decays the LR even when few steps were taken.
    assert warmup_cosine(20, 10, 10_000, 0.1, time_progress=1.0) == pytest.approx(0.1)
    assert time_progress(None) == 0.0


def test_decay_groups_split_matrices_from_vectors_and_skip_frozen() -> None:
    net = nn.Sequential(nn.Linear(4, 3), nn.LayerNorm(3), nn.Linear(3, 2))
    net[2].requires_grad_(False)
    decay, no_decay = decay_groups(net.named_parameters(), 0.01, lr=0.5)
    assert [p.shape for p in decay["params"]] == [(3, 4)] and decay["weight_decay"] == 0.01
    assert len(no_decay["params"]) == 3 and no_decay["weight_decay"] == 0.0  # bias, norm weight and bias
    assert decay["lr"] == no_decay["lr"] == 0.5
    assert decay_groups(net[2].named_parameters(), 0.01) == []
