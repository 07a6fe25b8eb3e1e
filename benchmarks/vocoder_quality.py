"""Neural vocoder against Griffin-Lim: speed and quality of resynthesis from ground-truth log-mels.

    python scripts/train.py experiment=vocoder run_name=vocoder_default
    python benchmarks/vocoder_quality.py model=runs/train/vocoder_default/model n=20 threads=1

For ``n`` held-out test utterances every system turns the utterance's log-mel (speech.vocoder.mel) back into a
waveform: Griffin-Lim at each of ``gl_iters`` and each trained vocoder. Per system: real-time factor on the CPU
(synthesis seconds / audio seconds, ``threads`` intra-op threads), the mel L1 distance of the output to the
original, and STOI and wide-band PESQ against the original where ``pystoi`` / ``pesq`` are installed
(``pip install -e .[tts]``). The table gives each figure's ratio to Griffin-Lim at the first ``gl_iters``.
"""

from __future__ import annotations

import json
import logging
import random
import time
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, ListConfig
from torch import nn

from common import runner
from common.io import atomic_open
from datamodules.manifest import read_manifest
from speech.audio import SAMPLE_RATE, load_audio
from speech.vocoder.griffin_lim import GriffinLimVocoder
from speech.vocoder.hub import load_vocoder
from speech.vocoder.losses import mel_l1
from speech.vocoder.mel import LogMelSpectrogram

log = logging.getLogger("vocoder_quality")
METRICS = ("rtf", "mel_l1", "stoi", "pesq")


def intelligibility_scorers() -> dict[str, Any]:
    """STOI and PESQ functions (reference, degraded -> float) for the packages that import."""
    scorers: dict[str, Any] = {}
    try:
        from pystoi import stoi

        scorers["stoi"] = lambda ref, deg: float(stoi(ref, deg, SAMPLE_RATE, extended=False))
    except ImportError:
        log.warning("pystoi is not installed (pip install -e .[tts]): no STOI column")
    try:
        from pesq import pesq

        scorers["pesq"] = lambda ref, deg: float(pesq(SAMPLE_RATE, ref, deg, "wb"))
    except ImportError:
        log.warning("pesq is not installed (pip install -e .[tts]): no PESQ column")
    return scorers


def systems(args: DictConfig) -> dict[str, nn.Module]:
    """Griffin-Lim at each iteration count, then each vocoder directory (named by its run folder)."""
    out: dict[str, nn.Module] = {f"griffin_lim_{n}": GriffinLimVocoder(n_iter=int(n)) for n in args.gl_iters}
    models = args.model if isinstance(args.model, list | ListConfig) else [args.model] if args.model else []
    for m in models:
        path = Path(str(m))
        name = path.parent.name if path.name == "model" else path.name
        out[name] = load_vocoder(path)
    return out


def score(vocoder: nn.Module, waves: list[np.ndarray], scorers: dict[str, Any]) -> dict[str, float]:
    """Mean figures of one system over the utterances (RTF over the total audio)."""
    mel_of = LogMelSpectrogram()
    synth_s = audio_s = 0.0
    per: dict[str, list[float]] = {k: [] for k in ("mel_l1", *scorers)}
    with torch.inference_mode():  # untimed warm-up: first-call allocations are not synthesis time
        vocoder(mel_of(torch.from_numpy(waves[0])[None]))
    for wave in waves:
        ref = torch.from_numpy(wave)[None]
        mel = mel_of(ref)
        with torch.inference_mode():
            t0 = time.perf_counter()
            out = vocoder(mel)
            synth_s += time.perf_counter() - t0
        audio_s += len(wave) / SAMPLE_RATE
        ref = ref[:, : out.shape[1]]
        per["mel_l1"].append(float(mel_l1(mel_of(out), mel_of(ref))))
        r, d = ref[0].numpy().astype(np.float64), out[0].numpy().astype(np.float64)
        for name, fn in scorers.items():
            per[name].append(fn(r, d))
    return {"rtf": synth_s / audio_s, **{k: float(np.mean(v)) for k, v in per.items()}}


def table(results: dict[str, dict[str, float]]) -> str:
    """Systems as rows, each figure with its ratio to the first (Griffin-Lim) row."""
    base_name = next(iter(results))
    base = results[base_name]
    cols = [m for m in METRICS if m in base]
    head = f"{'system':22}" + "".join(f"{c:>10} {'x' + base_name[-2:]:>7}" for c in cols)
    lines = [head, "-" * len(head)]
    for name, r in results.items():
        lines.append(f"{name:22}" + "".join(f"{r[c]:10.4f} {r[c] / base[c] if base[c] else float('nan'):7.2f}"
                                            for c in cols))
    return "\n".join(lines) + f"\n(x{base_name[-2:]}: ratio to {base_name}; mel L1 lower is better, STOI/PESQ higher)"


def run(args: DictConfig) -> dict[str, Any]:
    """Score every system on ``args.n`` test utterances, print the table and write the report to ``args.out``."""
    torch.set_num_threads(int(args.threads))
    rows = read_manifest(args.test)
    rows = random.Random(int(args.seed)).sample(rows, min(int(args.n), len(rows)))
    waves = [load_audio(r["audio"]) for r in rows]
    scorers = intelligibility_scorers()
    results: dict[str, dict[str, float]] = {}
    for name, vocoder in systems(args).items():
        torch.manual_seed(int(args.seed))  # Griffin-Lim starts from a random phase
        results[name] = score(vocoder.eval(), waves, scorers)
        log.info("%s: %s", name, {k: round(v, 4) for k, v in results[name].items()})
    print(table(results))
    report = {"systems": results, "utterances": [r["audio_raw"] for r in rows], "test": str(args.test),
              "audio_seconds": round(sum(len(w) for w in waves) / SAMPLE_RATE, 2), "threads": int(args.threads),
              "torch_version": torch.__version__}
    with atomic_open(args.out, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2, ensure_ascii=False)
    print(f"-> {args.out}")
    return report


@hydra.main(version_base="1.3", config_path="../configs/benchmarks", config_name="vocoder_quality")
def _cli(cfg: DictConfig) -> None:
    run(runner.require(cfg, "vocoder_quality", "benchmarks"))


def main(argv: list[str]) -> dict[str, Any]:
    """``python benchmarks/vocoder_quality.py`` in-process, ``argv`` its ``key=value`` words."""
    return runner.compose_and_run("vocoder_quality", argv, run, runner.BENCHMARK_CONFIGS, "benchmarks")


if __name__ == "__main__":
    _cli()
