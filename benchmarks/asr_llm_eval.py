"""LLM-ASR on a multilingual test manifest: per-language CER with and without the language token, and LID.

    python benchmarks/asr_llm_eval.py model=runs/train/asr_llm_f/model [test=data/speech/test.jsonl]
        [per_lang=20] [beam=1] [batch_size=16] [out=runs/bench/asr_llm_eval.json]

Takes the first ``per_lang`` utterances of each language; prints a table and writes the JSON summary.
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from common import runner
from common.io import atomic_open
from common.metrics import ErrorRates
from datamodules.manifest import read_manifest
from speech.asr.llm.infer import LLMTranscriber
from speech.audio import load_audio
from text.normalize import normalize_transcript


def per_language(manifest: str, n: int) -> list[dict[str, Any]]:
    """The first ``n`` rows of each language."""
    by_lang: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in read_manifest(manifest):
        if len(by_lang[row.get("lang", "und")]) < n:
            by_lang[row.get("lang", "und")].append(row)
    return [r for lang in sorted(by_lang) for r in by_lang[lang]]


def run(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate ``cfg.model``, print the table and write the JSON summary to ``cfg.out``."""
    args: dict[str, Any] = OmegaConf.to_container(cfg)  # type: ignore[assignment]
    rows = per_language(args["test"], int(args["per_lang"]))
    waves = [load_audio(r["audio"]) for r in rows]
    refs = [normalize_transcript(r.get("text", "")) for r in rows]
    langs = [r.get("lang", "und") for r in rows]
    tr = LLMTranscriber.from_pretrained(args["model"], beam=int(args["beam"]))
    bs = int(args["batch_size"])
    summary: dict[str, Any] = {"args": args, "n": len(rows)}
    # Batches of similar length: decoding runs to the longest utterance's byte budget.
    order = sorted(range(len(rows)), key=lambda i: len(waves[i]))
    for mode in ("lang", "no_lang"):
        t0 = time.perf_counter()
        hyps = [""] * len(rows)
        for s in range(0, len(order), bs):
            idx = order[s : s + bs]
            hint = [langs[i] if mode == "lang" else None for i in idx]
            for i, h in zip(idx, tr.transcribe_waves([waves[i] for i in idx], hint)):
                hyps[i] = h
            print(f"{mode}: {min(s + bs, len(rows))}/{len(rows)}", file=sys.stderr, flush=True)
        rates = ErrorRates()
        rates.update(hyps, refs, langs)
        shown = list(zip(refs, hyps))[:: max(1, len(rows) // 8)]
        summary[mode] = {"rates": rates.summary(), "seconds": time.perf_counter() - t0,
                         "examples": [{"ref": r, "hyp": h} for r, h in shown]}
    ident = [p for s in range(0, len(rows), bs) for p in tr.identify(waves[s : s + bs])]
    lid: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (pred, _), lang in zip(ident, langs):
        for key in (lang, "all"):
            lid[key][0] += int(pred == lang)
            lid[key][1] += 1
    summary["lid_acc"] = {k: v[0] / v[1] for k, v in lid.items()}
    summary["lid_mean_confidence"] = sum(p for _, p in ident) / max(len(ident), 1)

    print(f"{'lang':<10} {'n':>4} {'CER % (lang)':>13} {'CER % (no lang)':>16} {'LID acc %':>10}")
    for lang, m in summary["lang"]["rates"].items():
        cer_free = summary["no_lang"]["rates"][lang]["cer"]
        print(f"{lang:<10} {int(m['n']):>4} {100 * m['cer']:>13.2f} {100 * cer_free:>16.2f} "
              f"{100 * summary['lid_acc'].get(lang, 0.0):>10.1f}")
    print(f"mean LID confidence {summary['lid_mean_confidence']:.3f}; beam {args['beam']}")
    with atomic_open(args["out"], "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2, ensure_ascii=False)
    print(json.dumps({"cer_lang": summary["lang"]["rates"]["all"]["cer"],
                      "cer_no_lang": summary["no_lang"]["rates"]["all"]["cer"], "lid_acc": summary["lid_acc"]["all"]}))
    return summary


@hydra.main(version_base="1.3", config_path="../configs/benchmarks", config_name="asr_llm_eval")
def _cli(cfg: DictConfig) -> None:
    run(runner.require(cfg, "asr_llm_eval", "benchmarks"))


def main(argv: list[str]) -> dict[str, Any]:
    """``python benchmarks/asr_llm_eval.py`` in-process, ``argv`` its ``key=value`` words."""
    return runner.compose_and_run("asr_llm_eval", argv, run, runner.BENCHMARK_CONFIGS, "benchmarks")


if __name__ == "__main__":
    _cli()
