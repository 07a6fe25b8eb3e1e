"""Zero-shot extension by in-context examples: CER on a held-out language against the number of examples.

    python benchmarks/incontext_curve.py model=runs/train/asr_llm_f/model
        [test=data/speech_tur/test.jsonl] [pool=data/speech_tur/train.jsonl] [lang=tur_Latn] [n=40]
        [shots=0,1,5,10] [beam=1] [seed=0] [ctc=runs/train/asr_lowres_default/model]
        [out=runs/bench/incontext_curve.json]

Examples are drawn (seeded) from the pool's utterances of at most 4 s; the same ``n`` test utterances
are transcribed at every point, with no weight update. ``ctc=`` adds the CTC model's greedy CER on the
same utterances as a reference (``ctc=`` empty to skip).
"""

from __future__ import annotations

import json
import random
import sys
import time
from typing import Any

from common.io import atomic_open
from common.metrics import ErrorRates
from common.runner import parse_kv_args
from datamodules.manifest import read_manifest
from speech.asr.infer import Transcriber
from speech.asr.llm.hub import from_pretrained
from speech.asr.llm.infer import LLMTranscriber
from speech.audio import load_audio
from text.normalize import normalize_transcript


def main() -> None:
    args = parse_kv_args(sys.argv[1:], {
        "model": "runs/train/asr_llm_f/model", "test": "data/speech_tur/test.jsonl",
        "pool": "data/speech_tur/train.jsonl", "lang": "tur_Latn", "n": "40", "shots": "0,1,5,10", "beam": "1",
        "seed": "0", "batch_size": "8", "ctc": "runs/train/asr_lowres_default/model",
        "out": "runs/bench/incontext_curve.json",
    })
    rows = [r for r in read_manifest(args["test"]) if r.get("lang", args["lang"]) == args["lang"]][: int(args["n"])]
    waves = [load_audio(r["audio"]) for r in rows]
    refs = [normalize_transcript(r.get("text", "")) for r in rows]
    pool = [r for r in read_manifest(args["pool"]) if float(r.get("duration", 0.0)) <= 4.0]
    order = random.Random(int(args["seed"])).sample(pool, len(pool))
    model = from_pretrained(args["model"])
    bs = int(args["batch_size"])
    points: list[dict[str, Any]] = []
    for k in (int(s) for s in args["shots"].split(",")):
        if k > len(order):
            raise SystemExit(f"{args['pool']}: {len(order)} examples of at most 4 s, fewer than {k}")
        context = [(load_audio(r["audio"]), normalize_transcript(r["text"]), r.get("lang")) for r in order[:k]]
        tr = LLMTranscriber(model, context=context, beam=int(args["beam"]))
        t0 = time.perf_counter()
        hyps = [h for s in range(0, len(rows), bs) for h in tr.transcribe_waves(waves[s : s + bs],
                                                                              [args["lang"]] * len(waves[s : s + bs]))]
        rates = ErrorRates()
        rates.update(hyps, refs, [args["lang"]] * len(rows))
        m = rates.summary()["all"]
        points.append({"shots": k, "cer": m["cer"], "wer": m["wer"], "seconds": time.perf_counter() - t0,
                       "examples": [{"ref": r, "hyp": h} for r, h in list(zip(refs, hyps))[:3]]})
        print(f"shots {k:>2}: CER {100 * m['cer']:6.2f} %  WER {100 * m['wer']:6.2f} %  "
              f"({points[-1]['seconds']:.0f} s)", flush=True)
    summary: dict[str, Any] = {"args": args, "n": len(rows), "points": points}
    if args["ctc"]:
        ctc = Transcriber.from_pretrained(args["ctc"], decoder="greedy")
        rates = ErrorRates()
        rates.update(ctc.transcribe(waves, batch_size=bs), refs, [args["lang"]] * len(rows))
        summary["ctc_greedy"] = rates.summary()["all"]
    print(f"\n{'shots':>5} {'CER %':>7} {'WER %':>7}")
    for p in points:
        print(f"{p['shots']:>5} {100 * p['cer']:>7.2f} {100 * p['wer']:>7.2f}")
    if "ctc_greedy" in summary:
        print(f"{'CTC':>5} {100 * summary['ctc_greedy']['cer']:>7.2f} {100 * summary['ctc_greedy']['wer']:>7.2f}")
    with atomic_open(args["out"], "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2, ensure_ascii=False)
    print(json.dumps({"shots": [p["shots"] for p in points], "cer": [round(p["cer"], 4) for p in points],
                      "ctc_cer": summary.get("ctc_greedy", {}).get("cer")}))


if __name__ == "__main__":
    main()
