"""Does wav2vec 2.0 pretraining on unlabelled audio help low-resource CTC fine-tuning? Held-out CER, SSL vs scratch.

    python benchmarks/ssl_vs_scratch.py [unlabelled=data/speech/train.jsonl] [langs=[spa_Latn]] [n_train=50] \\
        [ssl_minutes=45] [ssl_batch_seconds=10] [ft_steps=2000] [ft_batch_seconds=20] [threads=1] [ssl_threads=2] \\
        [parallel=true] [out=runs/benchmarks/ssl_vs_scratch]

1. SSL-pretrains wav2vec2_tiny (experiment=ssl_pretrain) on every utterance of ``unlabelled`` (text ignored)
   for ``ssl_minutes`` of wall time (batches of ``ssl_batch_seconds`` of audio).
2. CTC fine-tunes model=asr_wav2vec2_tiny on the first ``n_train`` training utterances of ``langs`` for
   ``ft_steps`` optimiser steps twice, with the same recipe and seed: from the SSL export (model.init_encoder)
   and from scratch. A step budget, not a time budget: the two runs share a busy CPU and must see the same data.
3. Reports test CER of the final weights on the test utterances of ``langs`` (data/speech/test.jsonl), in
   out/results.md and .json.
Steps whose metrics.json exists are skipped, so an interrupted run can be re-run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from common import runner
from common.io import atomic_open, write_jsonl
from datamodules.manifest import read_manifest

ROOT = Path(__file__).resolve().parents[1]


def subset(src: str, langs: list[str], limit: int | None, dst: Path) -> int:
    """Write the rows of ``langs`` (the first ``limit`` of them) with absolute audio paths; returns the count."""
    rows = [r for r in read_manifest(ROOT / src) if r.get("lang") in langs][:limit]
    write_jsonl(dst, [{k: v for k, v in r.items() if k != "audio_raw"} for r in rows])
    return len(rows)


def budget(minutes: float) -> str:
    """Lightning's max_time string for ``minutes``."""
    s = int(minutes * 60)
    return f"00:{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def command(run_dir: Path, overrides: list[str], threads: str) -> list[str]:
    return [sys.executable, str(ROOT / "scripts" / "train.py"), *overrides, f"hydra.run.dir={run_dir}",
            f"threads={threads}", "data.num_workers=1", "logger=csv", "trainer.enable_progress_bar=false",
            "callbacks.progress_bar=null"]


def run_all(jobs: list[tuple[Path, list[str]]], parallel: bool) -> None:
    """Run the train.py commands whose run folder has no metrics.json yet (logs in <run>/stdout.log)."""
    todo = [(d, cmd) for d, cmd in jobs if not (d / "metrics.json").exists()]
    procs = []
    for d, cmd in todo:
        d.mkdir(parents=True, exist_ok=True)
        print("$", " ".join(cmd), flush=True)
        log = open(d / "stdout.log", "w")  # noqa: SIM115 - closed when the process ends
        p = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        procs.append((d, p, log))
        if not parallel:
            p.wait()
    for d, p, log in procs:
        if p.wait() != 0:
            raise SystemExit(f"{d}: train.py failed (exit {p.returncode}); see {d}/stdout.log")
        log.close()


def run(cfg: DictConfig) -> None:
    """Pretrain, fine-tune both ways and write results.md and results.json under ``cfg.out``."""
    args: dict[str, Any] = OmegaConf.to_container(cfg)  # type: ignore[assignment]
    out, langs, threads = ROOT / args["out"], [str(x) for x in args["langs"]], str(args["threads"])
    out.mkdir(parents=True, exist_ok=True)
    sizes = {split: subset(args[src], langs, int(args["n_train"]) if split == "train" else None,
                           out / f"{split}.jsonl")
             for split, src in (("train", "labelled"), ("dev", "dev"), ("test", "test"))}
    print(f"labelled subset {langs}: {sizes}", flush=True)

    t0 = time.time()
    ssl_dir = out / "ssl"
    run_all([(ssl_dir, command(ssl_dir, [
        "experiment=ssl_pretrain", f"data.train_manifest={ROOT / args['unlabelled']}",
        f"data.val_manifest={ROOT / args['dev']}", f"trainer.max_time={budget(float(args['ssl_minutes']))}",
        f"data.max_batch_seconds={args['ssl_batch_seconds']}", "trainer.val_check_interval=250",
        "model.warmup_steps=50", "callbacks.early_stopping=null",  # the loss sits at chance for the first ~1,000 steps
    ], str(args["ssl_threads"])))], parallel=False)
    ssl_time = time.time() - t0

    ft = [f"data.train_manifest={out / 'train.jsonl'}", f"data.val_manifest={out / 'dev.jsonl'}",
          f"data.test_manifest={out / 'test.jsonl'}", "model=asr_wav2vec2_tiny", "model.warmup_steps=50",
          "trainer.min_epochs=0", "trainer.max_epochs=1000", "trainer.precision=32-true",
          f"trainer.max_steps={args['ft_steps']}", "trainer.limit_val_batches=0", "callbacks.early_stopping=null",
          f"data.max_batch_seconds={args['ft_batch_seconds']}"]
    runs = {"ssl_init": out / "ft_ssl", "scratch": out / "ft_scratch"}
    t1 = time.time()
    run_all([(runs["ssl_init"], command(runs["ssl_init"], [*ft, f"model.init_encoder={ssl_dir / 'model'}"], threads)),
             (runs["scratch"], command(runs["scratch"], ft, threads))], parallel=bool(args["parallel"]))
    ft_time = time.time() - t1

    ssl_metrics = json.loads((ssl_dir / "metrics.json").read_text())["metrics"]
    results: dict[str, Any] = {"args": args, "sizes": sizes, "ssl_wall_s": round(ssl_time), "ft_wall_s": round(ft_time),
                               "ssl": {k: ssl_metrics.get(k) for k in ("val/loss", "val/accuracy",
                                                                         "val/code_perplexity")}}
    lines = ["| init | test CER | test WER | steps |", "|---|---|---|---|"]
    for name, d in runs.items():
        m = json.loads((d / "metrics.json").read_text())["metrics"]
        steps = _steps(d)
        results[name] = {"test/cer": m.get("test/cer"), "test/wer": m.get("test/wer"), "steps": steps}
        lines.append(f"| {name} | {m.get('test/cer', float('nan')):.3f} | {m.get('test/wer', float('nan')):.3f} "
                     f"| {steps} |")
    with atomic_open(out / "results.json", "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    with atomic_open(out / "results.md", "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(json.dumps(results, indent=2))
    print("\n".join(lines))


def _steps(run_dir: Path) -> int:
    """Optimiser steps of a run: the step of its last checkpoint."""
    last = run_dir / "checkpoints" / "last.ckpt"
    if not last.exists():
        return -1
    import torch

    return int(torch.load(str(last), map_location="cpu", weights_only=True)["global_step"])


@hydra.main(version_base="1.3", config_path="../configs/benchmarks", config_name="ssl_vs_scratch")
def _cli(cfg: DictConfig) -> None:
    run(runner.require(cfg, "ssl_vs_scratch", "benchmarks"))


def main(argv: list[str]) -> None:
    """``python benchmarks/ssl_vs_scratch.py`` in-process, ``argv`` its ``key=value`` words."""
    return runner.compose_and_run("ssl_vs_scratch", argv, run, runner.BENCHMARK_CONFIGS, "benchmarks")


if __name__ == "__main__":
    _cli()
