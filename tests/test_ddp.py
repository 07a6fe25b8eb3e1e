"""trainer=ddp with two CPU processes (gloo) equals one process with the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers import ROOT, compose_cfg, load_script, tiny_overrides
from tests.test_train import DETERMINISTIC


def _overrides(corpus: Path) -> list[str]:
    return [*tiny_overrides(corpus), *DETERMINISTIC, "trainer.max_steps=3", "trainer.max_epochs=-1",
            "callbacks.model_checkpoint=null", "callbacks.lr_monitor=null", "model.warmup_steps=1", "model.lr=1e-2",
            "threads=1"]


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(str(out / "model" / "model.safetensors"))


def _run_here(out: Path, corpus: Path, extra: list[str]) -> dict[str, torch.Tensor]:
    """One process, in this one (no interpreter start-up); the torch thread count is restored afterwards."""
    threads = torch.get_num_threads()
    try:
        load_script("train").train(compose_cfg("train", [*_overrides(corpus), *extra], out))
    finally:
        torch.set_num_threads(threads)
    return _weights(out)


# Marked slow (two fresh interpreters, ~30 s on 2 cores); scripts/test.sh still runs it in CI.
@pytest.mark.slow
def test_ddp_two_cpu_processes_match_one(tiny_corpus: Path, tmp_path: Path) -> None:
    # DETERMINISTIC batches 6 items; two ranks of 3 make the same global batches in the same order.
    out = tmp_path / "ddp"
    cmd = [sys.executable, str(ROOT / "scripts" / "train.py"), *_overrides(tiny_corpus), f"hydra.run.dir={out}",
           "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "data.max_batch_size=3"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ddp = _weights(out)
    single = _run_here(tmp_path / "single", tiny_corpus, [])
    init = _run_here(tmp_path / "init", tiny_corpus, ["trainer.max_steps=0"])
    moved = max((single[k] - init[k]).abs().max().item() for k in single)
    assert moved > 1e-3  # training really changed the weights
    for k in single:
        torch.testing.assert_close(ddp[k], single[k], atol=5e-5, rtol=1e-4)  # gloo all-reduce sums in another order
