"""The FLAME family's experiment configs: a time budget (trainer.max_time) must be able to end each training."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import compose_cfg


@pytest.mark.parametrize("experiment", ["text_lm", "flame", "clip_baseline"])
def test_a_max_time_stop_is_not_held_back_by_min_epochs(experiment: str, tmp_path: Path) -> None:
    # Lightning ignores a Timer stop until min_epochs are done; text_lm's epoch (95k rows) outlasts any budget, so
    # the quickstart's 8-minute LLM ran on past 10 minutes before this was set.
    cfg = compose_cfg("train", [f"experiment={experiment}"], tmp_path)
    assert cfg.trainer.max_time
    assert cfg.trainer.max_epochs == -1 and not cfg.trainer.get("min_epochs")
