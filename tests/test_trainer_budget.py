"""Every experiment's time budget (trainer.max_time) must be able to end its training, even inside the first epoch."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import ROOT, compose_cfg

EXPERIMENTS = sorted(p.stem for p in (ROOT / "configs" / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_a_max_time_stop_is_not_held_back_by_min_epochs(experiment: str, tmp_path: Path) -> None:
    # Lightning ignores a Timer stop until min_epochs are done; text_lm's epoch (95k rows) outlasts any budget, so
    # the FLAME quickstart's 8-minute LLM ran on past 10 minutes while min_epochs was 1.
    cfg = compose_cfg("train", [f"experiment={experiment}"], tmp_path)
    assert not cfg.trainer.get("min_epochs"), f"experiment={experiment}: trainer.min_epochs holds back max_time"
