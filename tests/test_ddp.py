"""trainer=ddp with two CPU processes (gloo) equals one process with the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from tests.helpers import ROOT, tiny_overrides
from tests.test_train import DETERMINISTIC


def _run(tmp: Path, name: str, corpus: Path, extra: list[str]) -> dict[str, torch.Tensor]:
    out = tmp / name
    cmd = [sys.executable, str(ROOT / "scripts" / "train.py"), *tiny_overrides(corpus), *DETERMINISTIC,
           "trainer.max_steps=3", "trainer.max_epochs=-1", f"hydra.run.dir={out}", "callbacks.model_checkpoint=null",
           "callbacks.lr_monitor=null", "model.warmup_steps=1", "model.lr=1e-2", *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return load_file(str(out / "model" / "model.safetensors"))


def test_ddp_two_cpu_processes_match_one(tiny_corpus: Path, tmp_path: Path) -> None:
    # DETERMINISTIC batches 6 items; two ranks of 3 make the same global batches in the same order.
    single = _run(tmp_path, "single", tiny_corpus, ["threads=1"])
    ddp = _run(tmp_path, "ddp", tiny_corpus, ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
                                               "data.max_batch_size=3", "threads=1"])
    init = _run(tmp_path, "init", tiny_corpus, ["threads=1", "trainer.max_steps=0"])
    moved = max((single[k] - init[k]).abs().max().item() for k in single)
    assert moved > 1e-3  # training really changed the weights
    for k in single:
        torch.testing.assert_close(ddp[k], single[k], atol=5e-5, rtol=1e-4)  # gloo all-reduce sums in another order
