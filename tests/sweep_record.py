"""A Hydra callback that saves each job's return value, as a sweeper (Optuna) would receive it, for the sweep test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from common.io import atomic_open


class RecordReturn(Callback):
    """Writes ``return.json`` (status and return value) into every job's output folder."""

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        assert job_return.hydra_cfg is not None
        out = Path(job_return.hydra_cfg.hydra.runtime.output_dir)
        done = job_return.status == JobStatus.COMPLETED
        value = job_return.return_value if done else repr(job_return._return_value)
        with atomic_open(out / "return.json", "w", encoding="utf-8") as f:
            json.dump({"status": job_return.status.name, "value": value}, f)
