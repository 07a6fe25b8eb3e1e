"""Zero-shot extension by in-context examples: CER on a held-out language against the number of examples.

    python benchmarks/incontext_curve.py model=runs/train/asr_llm_ic/model
        [test=data/speech_tur/test.jsonl] [pool=data/speech_tur/train.jsonl] [lang=tur_Latn] [n=100]
        [shots=[0,1,5,10]] [draws=3] [beam=1] [ctc=runs/train/asr_lowres_default/model]
        [fewshot=runs/benchmarks/fewshot/curve.json] [out=runs/benchmarks/incontext]

Each of ``draws`` seeded draws orders the pool's utterances of at most 4 s; ``k`` shots are the first ``k``
of a draw (nested sets). The same ``n`` test utterances are transcribed at every point, greedy
(``beam=1``), with no weight update and no language token (the model has none for ``lang``), and scored by
CER, WER and the share of letters written in a script the references never use. ``ctc=``
adds the CTC model's greedy CER without a hint on the same utterances (empty to skip), and how far its
hypotheses' lengths are from the references' in characters and in bytes; ``fewshot=``
overlays the adapter curve of ``benchmarks/fewshot_curve.py`` on the plot. Writes curve.json, curve.md
and curve.png under ``out``.
"""

from __future__ import annotations

import json
import random
import statistics
import time
import unicodedata
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from common import runner
from common.io import atomic_open
from common.metrics import ErrorRates
from datamodules.manifest import read_manifest
from speech.asr.infer import Transcriber
from speech.asr.llm.hub import from_pretrained
from speech.asr.llm.infer import LLMTranscriber
from speech.audio import load_audio
from text.normalize import normalize_transcript


def score(hyps: list[str], refs: list[str], lang: str) -> dict[str, float]:
    rates = ErrorRates()
    rates.update(hyps, refs, [lang] * len(refs))
    return rates.summary()["all"]


def script(c: str) -> str:
    """The script of a letter, as the first word of its Unicode name (LATIN, CYRILLIC, DEVANAGARI, ...)."""
    return unicodedata.name(c, "UNKNOWN").split()[0]


def foreign_share(hyps: list[str], refs: list[str]) -> float:
    """Share of the hypotheses' letters (%) written in a script the references never use."""
    scripts = {script(c) for r in refs for c in r if c.isalpha()}
    letters = [c for h in hyps for c in h if c.isalpha()]
    return 100 * sum(script(c) not in scripts for c in letters) / max(len(letters), 1)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Transcribe at every shot count and write curve.json, curve.md and curve.png under ``cfg.out``."""
    args: dict[str, Any] = OmegaConf.to_container(cfg)  # type: ignore[assignment]
    lang = args["lang"]
    rows = [r for r in read_manifest(args["test"]) if r.get("lang", lang) == lang][: int(args["n"])]
    waves = [load_audio(r["audio"]) for r in rows]
    refs = [normalize_transcript(r.get("text", ""), lang) for r in rows]
    pool = [r for r in read_manifest(args["pool"]) if float(r.get("duration", 0.0)) <= 4.0]
    model = from_pretrained(args["model"])
    bs = int(args["batch_size"])
    points: list[dict[str, Any]] = []
    for k in (int(s) for s in args["shots"]):
        if k > len(pool):
            raise SystemExit(f"{args['pool']}: {len(pool)} examples of at most 4 s, fewer than {k}")
        runs = []
        for draw in range(int(args["draws"]) if k else 1):
            chosen = random.Random(draw).sample(pool, len(pool))[:k]
            context = [(load_audio(r["audio"]), normalize_transcript(r["text"], lang), None) for r in chosen]
            tr = LLMTranscriber(model, context=context, beam=int(args["beam"]))
            t0 = time.perf_counter()
            hyps = [h for s in range(0, len(rows), bs) for h in tr.transcribe_waves(waves[s : s + bs])]
            m = score(hyps, refs, lang)
            runs.append({"draw": draw, "cer": 100 * m["cer"], "wer": 100 * m["wer"],
                         "foreign_script": foreign_share(hyps, refs), "seconds": time.perf_counter() - t0,
                         "examples": [{"ref": r, "hyp": h} for r, h in list(zip(refs, hyps))[:3]]})
            print(f"shots {k:>2} draw {draw}: CER {runs[-1]['cer']:6.2f} %  WER {runs[-1]['wer']:6.2f} %  "
                  f"foreign script {runs[-1]['foreign_script']:5.2f} %  ({runs[-1]['seconds']:.0f} s)", flush=True)
        cers = [r["cer"] for r in runs]
        points.append({"shots": k, "cer": statistics.mean(cers), "cer_min": min(cers), "cer_max": max(cers),
                       "wer": statistics.mean(r["wer"] for r in runs),
                       "foreign_script": statistics.mean(r["foreign_script"] for r in runs), "draws": runs})
    result: dict[str, Any] = {"args": args, "lang": lang, "n": len(rows), "points": points}
    if args["ctc"]:
        ctc = Transcriber.from_pretrained(args["ctc"], decoder="greedy")
        hyps = ctc.transcribe(waves, batch_size=bs)
        result["ctc_greedy"] = {k: 100 * v for k, v in score(hyps, refs, lang).items() if k in ("cer", "wer")}
        result["ctc_greedy"]["foreign_script"] = foreign_share(hyps, refs)
        # The LLM reads CTC-compressed audio at the positions of the CTC hypothesis' characters: how far that
        # hypothesis' length is from the reference's, counted in bytes and in characters.
        result["ctc_length_gap"] = {unit: statistics.mean(abs(size(h) - size(r)) for h, r in zip(hyps, refs))
                                    for unit, size in (("bytes", lambda t: len(t.encode())), ("chars", len))}
    if args["fewshot"]:
        result["fewshot"] = json.loads(Path(args["fewshot"]).read_text(encoding="utf-8"))["rows"]
    write_outputs(result, Path(args["out"]))
    return result


def write_outputs(result: dict[str, Any], out: Path) -> None:
    """curve.json, curve.md (table) and curve.png (CER against examples), each atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    with atomic_open(out / "curve.json", "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2, ensure_ascii=False)
    draws = max(len(p["draws"]) for p in result["points"])
    lines = [f"In-context {result['lang']}: {result['n']} held-out utterances, mean of {draws} draws of examples.",
             "", "| examples | CER % | range over draws | WER % | letters in a foreign script % |",
             "|---|---|---|---|---|"]
    lines += [f"| {p['shots']} | {p['cer']:.1f} | {p['cer_min']:.1f}–{p['cer_max']:.1f} | {p['wer']:.1f} | "
              f"{p['foreign_script']:.1f} |" for p in result["points"]]
    if "ctc_greedy" in result:
        ctc = result["ctc_greedy"]
        lines.append(f"| CTC model, no hint | {ctc['cer']:.1f} | | {ctc['wer']:.1f} | {ctc['foreign_script']:.1f} |")
        gap = result["ctc_length_gap"]
        lines += ["", f"CTC hypothesis length against the reference, mean absolute gap: {gap['chars']:.1f} characters, "
                  f"{gap['bytes']:.1f} bytes."]
    with atomic_open(out / "curve.md", "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    fig, ax = plt.subplots(figsize=(5, 3.5))
    xs = [p["shots"] for p in result["points"]]
    ax.errorbar(xs, [p["cer"] for p in result["points"]],
                yerr=[[p["cer"] - p["cer_min"] for p in result["points"]],
                      [p["cer_max"] - p["cer"] for p in result["points"]]],
                fmt="o-", capsize=3, label="LLM-ASR, examples in context")
    if "fewshot" in result:
        rows = result["fewshot"]
        ax.plot([r["utterances"] for r in rows], [r["cer"] for r in rows], "s--", label="CTC + adapters, fine-tuned")
    ax.axhline(20, color="grey", lw=0.8, ls=":")
    ax.set_xlabel(f"{result['lang']} examples / training utterances")
    ax.set_ylabel("CER % (held-out)")
    ax.set_title(f"Extension to {result['lang']}")
    ax.legend()
    fig.tight_layout()
    with atomic_open(out / "curve.png", "wb") as f:
        fig.savefig(f, format="png", dpi=120)
    print("\n".join(lines))


@hydra.main(version_base="1.3", config_path="../configs/benchmarks", config_name="incontext_curve")
def _cli(cfg: DictConfig) -> None:
    run(runner.require(cfg, "incontext_curve", "benchmarks"))


def main(argv: list[str]) -> dict[str, Any]:
    """``python benchmarks/incontext_curve.py`` in-process, ``argv`` its ``key=value`` words."""
    return runner.compose_and_run("incontext_curve", argv, run, runner.BENCHMARK_CONFIGS, "benchmarks")


if __name__ == "__main__":
    _cli()
