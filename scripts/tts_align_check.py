"""Are the TTS alignments plausible? Statistics of an aligned manifest (scripts/tts_align.py) against its audio.

    python scripts/tts_align_check.py aligned=data/tts_align/dev.jsonl rows=200

Prints, per language and overall: mel frames per character, per space and per edge silence unit, characters per
second, the alignment score; and two checks against the audio of the first ``rows`` rows:
- spectral change (mean L2 distance between neighbouring log-mel frames) at the unit boundaries, over the same
  at the boundaries of the same durations in a shuffled order (a ratio above 1: boundaries sit on acoustic
  changes, where letters change);
- level (mean log-mel) of the frames the silence units hold against those of the characters.
"""

from __future__ import annotations

import itertools
import json
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from omegaconf import DictConfig

from common import runner
from datamodules.manifest import read_manifest
from speech.audio import load_audio
from speech.tts.units import EDGE
from speech.vocoder.mel import LogMelSpectrogram


def unit_stats(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean frames per character / space / edge, characters per second and mean score, per language and 'all'."""
    acc: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        units, durs = r["units"], r["durations"]
        for key in (r.get("lang") or "?", "all"):
            a = acc[key]
            a["edge"] += [durs[0], durs[-1]]
            a["char"] += [d for u, d in zip(units[1:-1], durs[1:-1]) if u != EDGE]
            a["space"] += [d for u, d in zip(units[1:-1], durs[1:-1]) if u == EDGE]
            a["score"].append(r["align_score"])
            a["cps"].append(sum(u != EDGE for u in units) / max(float(r.get("duration") or 0.0), 1e-3))
    return {lang: {"rows": len(a["score"]), **{k: float(np.mean(v)) for k, v in a.items() if v},
                   "char_p95": float(np.percentile(a["char"], 95))} for lang, a in sorted(acc.items())}


def boundary_flux(mel: torch.Tensor, durs: list[int]) -> float:
    """Mean spectral change at the inner unit boundaries (frame j-1 to j) of a log-mel [T, n_mels]."""
    flux = (mel[1:] - mel[:-1]).norm(dim=-1)  # [T-1]: change into frame j+1
    cuts = [c for c in itertools.accumulate(durs[:-1]) if 0 < c < mel.shape[0]]
    return float(flux[[c - 1 for c in cuts]].mean()) if cuts else float("nan")


def audio_checks(rows: list[dict[str, Any]], base: Path, seed: int = 0) -> dict[str, float]:
    """Boundary spectral change over a shuffled-durations control, and silence vs character levels."""
    mel_of = LogMelSpectrogram()
    rng = random.Random(seed)
    real: list[float] = []
    shuffled: list[float] = []
    silent: list[float] = []
    speech: list[float] = []
    for r in rows:
        wave = load_audio(base / r["audio"])
        with torch.no_grad():
            mel = mel_of(torch.from_numpy(wave)[None])[0]  # [T, n_mels]
        if mel.shape[0] != sum(r["durations"]):
            raise ValueError(f"{r['audio']}: {mel.shape[0]} mel frames but the durations sum to {sum(r['durations'])}")
        durs = list(r["durations"])
        real.append(boundary_flux(mel, durs))
        rng.shuffle(durs)
        shuffled.append(boundary_flux(mel, durs))
        level = mel.mean(-1).tolist()
        cum = [0, *itertools.accumulate(r["durations"])]
        for u, a, b in zip(r["units"], cum[:-1], cum[1:]):
            (silent if u == EDGE else speech).extend(level[a:b])
    return {"rows": len(rows), "boundary_flux": float(np.nanmean(real)), "shuffled_flux": float(np.nanmean(shuffled)),
            "flux_ratio": float(np.nanmean(real) / np.nanmean(shuffled)),
            "silence_level": float(np.mean(silent)), "char_level": float(np.mean(speech))}


def run(cfg: DictConfig) -> dict[str, Any]:
    """Print and return the statistics of ``cfg.aligned``."""
    runner.setup_threads(cfg.get("threads"))
    rows = read_manifest(cfg.aligned, resolve_paths=False)
    stats = unit_stats(rows)
    for lang, s in stats.items():
        print(f"{lang:10s} " + "  ".join(f"{k}={v:.2f}" for k, v in s.items()))
    checks = audio_checks(rows[: cfg.rows], Path(cfg.aligned).parent)
    print("audio: " + "  ".join(f"{k}={v:.3f}" for k, v in checks.items()))
    out = {"units": stats, "audio": checks}
    if cfg.get("output"):
        runner.write_json(cfg.output, out)
    return out


@hydra.main(version_base="1.3", config_path="../configs/inference", config_name="tts_align_check")
def main(cfg: DictConfig) -> None:
    print(json.dumps(run(runner.require(cfg, "tts_align_check"))["audio"]))


if __name__ == "__main__":
    main()
