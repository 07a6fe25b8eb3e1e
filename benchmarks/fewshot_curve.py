"""Few-shot learning curve: CER on a held-out language after adapting on 0, 5, 10, 20, 50 utterances.

    python benchmarks/fewshot_curve.py [model=runs/train/asr_lowres_default/model] [lang=tur_Latn] \\
        [train=data/speech_tur/train.jsonl] [test=data/speech_tur/test.jsonl] [old=data/speech/test.jsonl] \\
        [sizes=[0,5,10,20,50]] [steps=60] [old_per_lang=20] [text=<text for a char LM>] [out=runs/benchmarks/fewshot]

0 utterances is the base model as it is (greedy, no language hint, alphabet unrestricted). Each size
n (skipped when ``out/rows.jsonl`` already holds it for the same settings) trains a fresh adapter on the
first n utterances of one fixed shuffle (nested subsets) and is scored greedy with the language hint.
Drift: the largest per-language CER change (points) on ``old_per_lang`` utterances of every old
language, adapted against base model, with and without the hint. Writes curve.md, curve.json and curve.png.
"""

from __future__ import annotations

import json
import random
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig

from common import runner
from common.io import append_jsonl, atomic_open, read_jsonl_lenient
from speech.asr.beam import LanguageModels
from speech.asr.extend import (
    AdapterConfig,
    Example,
    ExtendConfig,
    add_language,
    error_rates,
    finetune,
    load_examples,
    load_for_extension,
    transcribe,
)
from speech.features import pad_waves
from text.char_lm import CharNgramLM
from text.normalize import normalize_transcript


def per_lang(examples: list[Example], n: int) -> list[Example]:
    """The first ``n`` utterances of each language."""
    seen: dict[str, int] = defaultdict(int)
    out = []
    for e in examples:
        if seen[e[2]] < n:
            seen[e[2]] += 1
            out.append(e)
    return out


@torch.inference_mode()
def lm_cer(model: Any, vocab: Any, examples: list[Example], lm: CharNgramLM, alpha: float, beta: float) -> float:
    """CER of beam search with a character LM (the language hint given)."""
    lms = LanguageModels({examples[0][2]: lm}, alpha=alpha, beta=beta, beam=8)
    hyps = []
    for i in range(0, len(examples), 16):
        batch = examples[i : i + 16]
        wave, lens = pad_waves([e[0] for e in batch])
        logp, out_lens = model(wave, lens, [e[2] for e in batch])
        hyps += [lms.decode(lp[:n].numpy(), vocab, e[2]) for lp, n, e in zip(logp, out_lens.tolist(), batch)]
    return 100 * error_rates(hyps, examples)["all"]["cer"]


def run(args: DictConfig) -> dict[str, Any]:
    """Adapt at every size not done yet, score, and write curve.md, curve.json and curve.png under ``out``."""
    model_dir = str(args.model)
    lang = str(args.lang)
    sizes = [int(x) for x in args.sizes]
    out = Path(args.out)
    steps, rank = int(args.steps), int(args.rank)
    torch.set_num_threads(int(args.threads))
    pool = load_examples(args.train, lang)
    random.Random(0).shuffle(pool)
    test = load_examples(args.test, lang)
    old = per_lang(load_examples(args.old), int(args.old_per_lang))
    out.mkdir(parents=True, exist_ok=True)
    lm = None
    if args.text:
        lines = [normalize_transcript(x) for x in Path(args.text).read_text(encoding="utf-8").splitlines()]
        lm = CharNgramLM(6).fit([x for x in lines if x])

    # Finished sizes are kept in rows.jsonl, so a re-run (or a parallel run on other sizes) skips them.
    setting: dict[str, Any] = {"steps": steps, "rank": rank, "batch_size": int(args.batch_size),
               "lr": float(args.lr), "old_per_lang": int(args.old_per_lang),
               "lm": lm is not None}
    done = {r["utterances"]: r for r in read_jsonl_lenient(out / "rows.jsonl") if r.get("setting") == setting}
    todo = [n for n in sizes if n not in done]
    base, base_vocab, _ = load_for_extension(model_dir)
    old_ref = {h: error_rates(transcribe(base, base_vocab, old, hint=h), old) for h in (True, False)} if todo else {}
    for n in todo:
        model, vocab, _ = load_for_extension(model_dir, AdapterConfig(rank=rank, alpha=2.0 * rank))
        row: dict[str, Any] = {"utterances": n, "train_seconds": 0.0, "setting": setting}
        if n > 0:
            subset = pool[:n]
            add_language(model, vocab, lang, [e[1] for e in subset])
            t0 = time.time()
            cfg = ExtendConfig(steps=steps, batch_size=min(setting["batch_size"], n), adapter=model.cfg,
                               lr=setting["lr"], warmup=max(1, steps // 10))
            finetune(model, vocab, lang, subset, cfg)
            row["train_seconds"] = round(time.time() - t0, 1)
        summary = error_rates(transcribe(model, vocab, test, hint=n > 0), test)
        row["cer"], row["wer"] = 100 * summary["all"]["cer"], 100 * summary["all"]["wer"]
        if lm is not None and n > 0:
            row["cer_lm"] = lm_cer(model, vocab, test, lm, alpha=0.3, beta=1.0)
        for h in (True, False):
            now = error_rates(transcribe(model, vocab, old, hint=h), old)
            key = "drift_hint" if h else "drift_nohint"
            row[key] = max((abs(100 * (now[k]["cer"] - old_ref[h][k]["cer"])) for k in now), default=0.0)
        row["old_cer_base"] = 100 * old_ref[True]["all"]["cer"]
        append_jsonl(out / "rows.jsonl", row)
        done[n] = row
        print(json.dumps(row), flush=True)
    rows = [done[n] for n in sizes]

    result = {"lang": lang, "model": model_dir, **setting, "test_utterances": len(test),
              "old_utterances": len(old), "rows": rows}
    write_outputs(result, out)
    return result


def write_outputs(result: dict[str, Any], out: Path) -> None:
    """curve.json, curve.md (table) and curve.png (CER against utterances), each atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    with atomic_open(out / "curve.json", "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    has_lm = any("cer_lm" in r for r in result["rows"])
    head = "| utterances | CER % | WER % |" + (" CER % + char LM |" if has_lm else "") + \
        " max old-lang drift, hint | max drift, no hint | train s |"
    lines = [f"Few-shot {result['lang']}: {result['test_utterances']} held-out utterances; drift over "
             f"{result['old_utterances']} old-language utterances (CER points).", "", head,
             "|" + "---|" * (head.count("|") - 1)]
    for r in result["rows"]:
        lm = f" {r['cer_lm']:.1f} |" if has_lm and "cer_lm" in r else (" - |" if has_lm else "")
        lines.append(f"| {r['utterances']} | {r['cer']:.1f} | {r['wer']:.1f} |{lm} {r['drift_hint']:.2f} | "
                     f"{r['drift_nohint']:.2f} | {r['train_seconds']:.0f} |")
    with atomic_open(out / "curve.md", "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    fig, ax = plt.subplots(figsize=(5, 3.5))
    xs = [r["utterances"] for r in result["rows"]]
    ax.plot(xs, [r["cer"] for r in result["rows"]], "o-", label="greedy")
    if has_lm:
        pts = [(r["utterances"], r["cer_lm"]) for r in result["rows"] if "cer_lm" in r]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "s--", label="+ char LM")
    ax.axhline(20, color="grey", lw=0.8, ls=":")
    ax.set_xlabel(f"{result['lang']} training utterances")
    ax.set_ylabel("CER % (held-out)")
    ax.set_title(f"Few-shot adapters, {result['steps']} steps, rank {result['rank']}")
    ax.legend()
    fig.tight_layout()
    with atomic_open(out / "curve.png", "wb") as f:
        fig.savefig(f, format="png", dpi=120)
    print("\n".join(lines))


@hydra.main(version_base="1.3", config_path="../configs/benchmarks", config_name="fewshot_curve")
def _cli(cfg: DictConfig) -> None:
    run(runner.require(cfg, "fewshot_curve", "benchmarks"))


def main(argv: list[str]) -> dict[str, Any]:
    """``python benchmarks/fewshot_curve.py`` in-process, ``argv`` its ``key=value`` words."""
    return runner.compose_and_run("fewshot_curve", argv, run, runner.BENCHMARK_CONFIGS, "benchmarks")


if __name__ == "__main__":
    _cli()
