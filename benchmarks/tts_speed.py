"""Real-time factor of a TTS bundle on the CPU at several NFE with both ODE methods, its vocoder next to Griffin-Lim,
and intelligibility and speaker similarity against NFE (a PNG).

    python benchmarks/tts_speed.py model=runs/tts/bundle requests=runs/tts/requests.jsonl [threads=2] \
        [per_lang=2] [nfe=[8,16,32]] [methods=[midpoint,euler]] [out=runs/bench/tts_speed]

Every setting (NFE x method) says the first ``per_lang`` requests of each language (held-out sentences in unseen
voices, speech.tts.infer.write_prompt_requests) with Synthesizer.tts. The seconds go to the acoustic side (reading
the prompt, durations, the flow ODE) and to each vocoder, the bundle's and Griffin-Lim, both run on the same mel
frames; RTF = seconds / seconds of generated speech, on ``threads`` intra-op threads, after an untimed pass over
every request (which also drops the requests the model refuses). Each (setting, vocoder) is scored as
benchmarks/tts_quality.py scores: the suite ASR's CER against the recordings of the same sentences and the share of
the speaker-similarity gap. Target: RTF <= 0.3 at NFE 16 (acoustic model plus vocoder, 2 threads).
``out``/tts_speed.json holds every figure and ``out``/tts_speed.png plots CER, similarity and RTF against NFE.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from omegaconf import DictConfig
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/x.py` imports benchmarks.*

from benchmarks.tts_quality import (
    CER_TARGET_POINTS,
    GAP_TARGET,
    Judges,
    Request,
    command,
    first_per_lang,
    load_requests,
    measure_baseline,
    save_png,
    score_generated,
    write_json,
)
from common import runner
from speech.tts.bundle import GRIFFIN_LIM, read_bundle
from speech.tts.synthesizer import Synthesizer
from speech.vocoder.hub import make_vocoder

log = logging.getLogger("tts_speed")
RTF_TARGET = 0.3
"""Real-time factor to reach at NFE 16 on 2 CPU threads."""


class Timed(nn.Module):
    """A vocoder that adds up the seconds it runs."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner, self.seconds = inner, 0.0

    def forward(self, mel: Tensor) -> Tensor:
        t0 = time.perf_counter()
        out = self.inner(mel)
        self.seconds += time.perf_counter() - t0
        return out


def vocoder_name(path: str) -> str:
    """``griffin_lim``, or the run folder of a vocoder directory (runs/train/vocoder_default/model -> its name)."""
    p = Path(path)
    return GRIFFIN_LIM if path == GRIFFIN_LIM else p.parent.name if p.name == "model" else p.name


def usable(synth: Synthesizer, reqs: Sequence[Request], seed: int) -> list[Request]:
    """The requests the model takes, found by one cheap untimed pass that also warms every code path up."""
    ok = []
    for q in reqs:
        try:
            synth.tts(q.text, q.lang, q.prompt, q.prompt_text, nfe=1, method="euler", seed=seed)
            ok.append(q)
        except ValueError as e:
            log.warning("leaving out request %s: %s", q.id, e)
    if not ok:
        raise SystemExit("tts_speed: the model refuses every request")
    return ok


def time_setting(synth: Synthesizer, vocoders: Mapping[str, Timed], reqs: Sequence[Request], nfe: int, method: str,
                 cfg: DictConfig) -> tuple[dict[str, Any], dict[str, list[np.ndarray]]]:
    """Seconds of the acoustic side and of each vocoder over the requests, and the waves of each vocoder.

    The first of ``vocoders`` is the synthesizer's own (timed inside ``synth.tts``); the others vocode the same
    mel frames afterwards.
    """
    names = list(vocoders)
    waves: dict[str, list[np.ndarray]] = {n: [] for n in names}
    voc = dict.fromkeys(names, 0.0)
    acoustic = audio = 0.0
    for q in reqs:
        for v in vocoders.values():
            v.seconds = 0.0
        t0 = time.perf_counter()
        out = synth.tts(q.text, q.lang, q.prompt, q.prompt_text, nfe=nfe, method=method, guidance=float(cfg.guidance),
                        sway=float(cfg.sway), seed=int(cfg.seed))
        acoustic += time.perf_counter() - t0 - vocoders[names[0]].seconds
        waves[names[0]].append(out.wav)
        audio += out.seconds
        for name in names[1:]:
            with torch.no_grad(), torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(cfg.seed))
                waves[name].append(vocoders[name](out.mel[None].to(synth.device))[0].float().cpu().numpy())
        for name, v in vocoders.items():
            voc[name] += v.seconds
    row = {"nfe": nfe, "method": method, "utterances": len(reqs), "audio_seconds": round(audio, 3),
           "rtf_acoustic": acoustic / audio,
           "vocoders": {n: {"rtf": (acoustic + voc[n]) / audio, "rtf_vocoder": voc[n] / audio,
                            "within_rtf_target": (acoustic + voc[n]) / audio <= RTF_TARGET} for n in names}}
    return row, waves


def plot(rows: Sequence[Mapping[str, Any]], reference_cer: float | None, path: Path) -> Path:
    """CER, similarity gap share and RTF against NFE: one line per method and vocoder, targets dotted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    series: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for r in rows:
        for name in r["vocoders"]:
            series.setdefault((r["method"], name), []).append(r)
    panels = (("cer", "CER % (suite ASR)"), ("gap_fraction", "speaker similarity, % of the gap"), ("rtf", "RTF"))
    for ax, (key, label) in zip(axes, panels, strict=True):
        for (method, name), rs in series.items():
            ys = [r["vocoders"][name].get(key, math.nan) * (100 if key == "gap_fraction" else 1) for r in rs]
            ax.plot([r["nfe"] for r in rs], ys, marker="o", linestyle="-" if name != GRIFFIN_LIM else "--",
                    label=f"{method}, {name}")
        ax.set_xlabel("NFE")
        ax.set_ylabel(label)
        ax.set_xticks(sorted({r["nfe"] for r in rows}))
        ax.grid(alpha=0.3)
    if reference_cer is not None:
        axes[0].axhline(reference_cer, color="k", linestyle=":", label="recordings")
        axes[0].axhline(reference_cer + CER_TARGET_POINTS, color="r", linestyle=":", label="target")
    axes[1].axhline(100 * GAP_TARGET, color="r", linestyle=":", label="target")
    axes[2].axhline(RTF_TARGET, color="r", linestyle=":", label="target")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.suptitle("TTS against NFE: held-out sentences in unseen voices")
    return save_png(fig, path)


def table(rows: Sequence[Mapping[str, Any]], cmd: str) -> str:
    """One line per setting and vocoder: RTF of each side and of both, CER and similarity."""
    head = (f"{'NFE':>4} {'method':9} {'vocoder':18} {'RTF acoustic':>12} {'RTF vocoder':>11} {'RTF total':>9} "
            f"{'CER %':>6} {'gap %':>6}")
    lines = [f"$ {cmd}", f"Real-time factor on {torch.get_num_threads()} CPU threads (target {RTF_TARGET} at NFE 16), "
             "suite-ASR CER and the share of the speaker-similarity gap", head, "-" * len(head)]
    for r in rows:
        lines += [f"{r['nfe']:>4} {r['method']:9} {name[:18]:18} {r['rtf_acoustic']:>12.3f} {v['rtf_vocoder']:>11.3f} "
                  f"{v['rtf']:>9.3f} {v.get('cer', math.nan):>6.2f} {100 * v.get('gap_fraction', math.nan):>6.1f}"
                  for name, v in r["vocoders"].items()]
    return "\n".join(lines)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Time and score every setting; print the table, write ``cfg.out``/tts_speed.json and .png."""
    runner.setup_threads(cfg.threads)
    out_dir = Path(cfg.out)
    reqs = first_per_lang(load_requests(cfg.requests), cfg.per_lang)
    try:
        synth = Synthesizer.from_pretrained(cfg.model, device=cfg.device)
    except ValueError as e:
        raise SystemExit(f"model={cfg.model}: {e}") from None
    own = read_bundle(cfg.model).vocoder
    vocoders = {vocoder_name(own): Timed(synth.vocoder)}
    synth.vocoder = vocoders[vocoder_name(own)]
    if own != GRIFFIN_LIM:  # the baseline beside the bundle's own
        vocoders[GRIFFIN_LIM] = Timed(make_vocoder(GRIFFIN_LIM, cfg.device, n_iter=int(cfg.gl_iters)))
    reqs = usable(synth, reqs, int(cfg.seed))
    judges = Judges.load(cfg.asr, cfg.speaker, cfg.device)
    base = measure_baseline(judges, reqs, int(cfg.seed))
    rows = []
    for method in cfg.methods:
        for nfe in cfg.nfe:
            if method == "midpoint" and int(nfe) % 2:
                log.warning("skipping NFE %s for midpoint (two evaluations a step)", nfe)
                continue
            row, waves = time_setting(synth, vocoders, reqs, int(nfe), str(method), cfg)
            for name, ws in waves.items():
                scored = score_generated(judges, base, reqs, ws)
                if "intelligibility" in scored:
                    every = scored["intelligibility"]["per_lang"]["all"]
                    row["vocoders"][name] |= {"cer": every["generated_cer"],
                                              "cer_difference_points": every["difference_points"]}
                if "similarity" in scored:
                    row["vocoders"][name]["gap_fraction"] = scored["similarity"].get("gap_fraction", math.nan)
            rows.append(row)
            log.info("NFE %s %s: %s", nfe, method, row["vocoders"])
    if not rows:
        raise SystemExit("tts_speed: no setting to time (nfe= and methods= are empty, or only odd NFE for midpoint)")
    cmd = command("tts_speed", cfg, ["model", "requests", "asr", "speaker", "per_lang", "nfe", "methods", "threads"])
    reference_cer = 100 * base.reference_rates["all"]["cer"] if base.reference_rates else None
    report = {"command": cmd, "rows": rows, "reference_cer": reference_cer, "rtf_target": RTF_TARGET,
              "settings": {"model": str(cfg.model), "requests": str(cfg.requests), "utterances": len(reqs),
                           "threads": torch.get_num_threads(), "guidance": float(cfg.guidance),
                           "sway": float(cfg.sway), "seed": int(cfg.seed), "torch_version": torch.__version__}}
    print(table(rows, cmd))
    write_json(out_dir / "tts_speed.json", report)
    plot(rows, reference_cer, out_dir / "tts_speed.png")
    print(f"-> {out_dir / 'tts_speed.json'}, {out_dir / 'tts_speed.png'}")
    return report


@hydra.main(version_base="1.3", config_path="../configs/benchmarks", config_name="tts_speed")
def _cli(cfg: DictConfig) -> None:
    run(runner.require(cfg, "tts_speed", "benchmarks"))


def main(argv: list[str]) -> dict[str, Any]:
    """``python benchmarks/tts_speed.py`` in-process, ``argv`` its ``key=value`` words."""
    return runner.compose_and_run("tts_speed", argv, run, runner.BENCHMARK_CONFIGS, "benchmarks")


if __name__ == "__main__":
    _cli()
