"""CTC language ID: accuracy per language, CER of LID-steered decoding, segment accuracy on code-switched audio.

    python scripts/build_lid.py model=<dir> train=data/speech/train.jsonl dev=data/speech/dev.jsonl
    python benchmarks/lid_eval.py model=<dir> test=data/speech/test.jsonl per_lang=25 out=lid_eval.json

For each test clip the encoder runs once; its log-probs are decoded three ways: without a language
(decoder auto = greedy over the whole vocabulary), in the LID-detected language (alphabet + character LM
when the detection is at least ``min_confidence`` sure) and in the true language. Code-switched files are
clips of one language (about ``switch_seconds``) followed by clips of another; segment accuracy is the
share of 0.1 s steps whose predicted language is the true one, and the boundary error is the distance
between the true switch and the first predicted run of the second language.
"""

from __future__ import annotations

import json
import random
import time
from collections import defaultdict
from typing import Any

import hydra
import numpy as np
from omegaconf import DictConfig

from common import runner
from common.io import atomic_open
from common.metrics import ErrorRates
from datamodules.manifest import read_manifest
from speech.asr.infer import Transcriber
from speech.audio import SAMPLE_RATE, load_audio
from text.normalize import normalize_transcript


def pick(rows: list[dict[str, Any]], per_lang: int, seed: int = 0) -> list[dict[str, Any]]:
    """A seeded subset of ``per_lang`` rows per language (all when there are fewer)."""
    by_lang: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_lang[r["lang"]].append(r)
    rng = random.Random(seed)
    return [r for lang in sorted(by_lang) for r in rng.sample(by_lang[lang], min(per_lang, len(by_lang[lang])))]


def clip_eval(t: Transcriber, rows: list[dict[str, Any]], waves: list[np.ndarray]) -> dict[str, Any]:
    """LID accuracy and confidence per language, and CER of the three ways of decoding."""
    rates = {k: ErrorRates() for k in ("no_lang", "lid", "true_lang")}
    per_lang: dict[str, list[tuple[bool, float]]] = defaultdict(list)
    confusion: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    secs = {"encode": 0.0, "lid": 0.0}
    order = sorted(range(len(waves)), key=lambda i: len(waves[i]))
    for s in range(0, len(order), 16):
        idx = order[s : s + 16]
        t0 = time.perf_counter()
        logp, lens, hidden = t.log_probs_and_frames([waves[i] for i in idx])
        t1 = time.perf_counter()
        assert hidden is not None
        infos = [t.identify_frames(hidden[j, : int(lens[j])], None, len(waves[i]) / SAMPLE_RATE, waves[i])
                 for j, i in enumerate(idx)]
        secs["encode"] += t1 - t0
        secs["lid"] += time.perf_counter() - t1
        for j, i in enumerate(idx):
            r, info, lp = rows[i], infos[j], logp[j, : int(lens[j])]
            per_lang[r["lang"]].append((info["lang"] == r["lang"], info["confidence"]))
            confusion[r["lang"]][info["lang"]] += 1
            ref = normalize_transcript(r["text"])
            steered = info["lang"] if info["confidence"] >= t.lid_min_confidence else None
            for key, lang in (("no_lang", None), ("lid", steered), ("true_lang", r["lang"])):
                rates[key].update([t.decode(lp, lang)], [ref], [r["lang"]])
    acc = {lang: {"accuracy": float(np.mean([ok for ok, _ in v])), "mean_confidence": float(np.mean([c for _, c in v])),
                  "n": len(v)} for lang, v in sorted(per_lang.items())}
    every = [x for v in per_lang.values() for x in v]
    acc["all"] = {"accuracy": float(np.mean([ok for ok, _ in every])),
                  "mean_confidence": float(np.mean([c for _, c in every])), "n": len(every)}
    return {"lid": acc, "cer": {k: v.summary() for k, v in rates.items()},
            "confusion": {k: dict(v) for k, v in confusion.items()}, "seconds": secs}


def code_switched(t: Transcriber, rows: list[dict[str, Any]], switch_seconds: float, pairs: int,
                  seed: int = 0) -> dict[str, Any]:
    """Segment accuracy and boundary error on files of two languages back to back."""
    by_lang: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_lang[r["lang"]].append(r)
    langs = sorted(by_lang)
    rng = random.Random(seed)
    results = []
    for k in range(pairs):
        a = langs[k % len(langs)]
        b = rng.choice([x for x in langs if x != a])
        parts, bounds = [], []
        for lang in (a, b):
            got = 0.0
            for r in rng.sample(by_lang[lang], len(by_lang[lang])):
                if got >= switch_seconds:
                    break
                parts.append(load_audio(r["audio"]))
                got += len(parts[-1]) / SAMPLE_RATE
            bounds.append(got)
        wave = np.concatenate(parts)
        (info,) = t.identify([wave])
        runs = info.get("segments", [])
        grid = np.arange(0.05, len(wave) / SAMPLE_RATE, 0.1)
        truth = np.where(grid < bounds[0], a, b)
        pred = np.array([next((r["lang"] for r in runs if r["start"] <= x < r["end"]), runs[-1]["lang"])
                         for x in grid])
        switch = next((r["start"] for r in runs if r["lang"] == b), None)
        results.append({"langs": [a, b], "boundary": round(bounds[0], 2), "seconds": round(len(wave) / SAMPLE_RATE, 2),
                        "accuracy": float((pred == truth).mean()), "runs": len(runs),
                        "boundary_error": None if switch is None else round(abs(switch - bounds[0]), 2)})
    errs = [r["boundary_error"] for r in results if r["boundary_error"] is not None]
    return {"files": results, "accuracy": float(np.mean([r["accuracy"] for r in results])),
            "boundary_error_median": float(np.median(errs)) if errs else None,
            "second_language_found": len(errs) / len(results)}


def run(args: DictConfig) -> dict[str, Any]:
    """Evaluate ``args.model``'s LID, print the tables and write the report to ``args.out``."""
    t = Transcriber.from_pretrained(args.model, decoder=args.decoder, lid=True,
                                    lid_min_confidence=float(args.min_confidence))
    t.lid_segments.reencode = bool(args.reencode)
    rows = pick(read_manifest(args.test), int(args.per_lang))
    waves = [load_audio(r["audio"]) for r in rows]
    t0 = time.perf_counter()
    report = clip_eval(t, rows, waves)
    cs = code_switched(t, rows, float(args.switch_seconds), int(args.pairs))
    report |= {"code_switched": cs, "model": args.model, "decoder": t.decoder, "clips": len(rows),
               "min_confidence": t.lid_min_confidence, "wall_seconds": round(time.perf_counter() - t0, 1)}
    print(f"{'lang':10} {'LID acc':>8} {'conf':>6} {'n':>4} | CER % {'no lang':>8} {'LID':>6} {'true':>6}")
    for lang, v in report["lid"].items():
        c = [100 * report["cer"][k][lang]["cer"] for k in ("no_lang", "lid", "true_lang")]
        print(f"{lang:10} {v['accuracy']:8.3f} {v['mean_confidence']:6.3f} {v['n']:4d} | "
              f"      {c[0]:8.2f} {c[1]:6.2f} {c[2]:6.2f}")
    print(f"code-switched ({len(cs['files'])} files of 2 x ~{args.switch_seconds} s): segment accuracy "
          f"{cs['accuracy']:.3f}, median boundary error {cs['boundary_error_median']} s, "
          f"second language found in {100 * cs['second_language_found']:.0f}%")
    out = args.out
    with atomic_open(out, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2, ensure_ascii=False)
    print(f"-> {out}")
    return report


@hydra.main(version_base="1.3", config_path="../configs/benchmarks", config_name="lid_eval")
def _cli(cfg: DictConfig) -> None:
    run(runner.require(cfg, "lid_eval", "benchmarks"))


def main(argv: list[str]) -> dict[str, Any]:
    """``python benchmarks/lid_eval.py`` in-process, ``argv`` its ``key=value`` words."""
    return runner.compose_and_run("lid_eval", argv, run, runner.BENCHMARK_CONFIGS, "benchmarks")


if __name__ == "__main__":
    _cli()
