"""In-context learning of a made-up orthography, on held-out sentences of the training languages.

    python benchmarks/incontext_respell.py model=runs/train/asr_llm_ic/model
        [test=data/speech/dev.jsonl] [per_lang=10] [shots=[0,1,5]] [seed=0] [out=runs/benchmarks/incontext_respell.json]

Each test utterance is respelt together with ``max(shots)`` other utterances of its language from the same
manifest (``datamodules.speech_context.respell``: a few letters or letter pairs become letters none of them
has). It is then transcribed with the first ``k`` of them as examples, no language token, greedy, and scored
against its respelt transcript: how far can ``k`` examples teach a spelling that no weight has seen? Besides
CER and WER, it reports the share of the reference's new letters that the hypothesis has at the aligned place
(difflib).
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from difflib import SequenceMatcher
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from common import runner
from common.io import atomic_open
from common.metrics import ErrorRates
from datamodules.manifest import read_manifest
from datamodules.speech_context import respell
from speech.asr.llm.hub import from_pretrained
from speech.asr.llm.infer import LLMTranscriber
from speech.audio import load_audio
from text.normalize import normalize_transcript


def letter_recall(hyp: str, ref: str, letters: set[str]) -> tuple[int, int]:
    """How many of ``ref``'s characters in ``letters`` the hypothesis matches at the aligned place, and how many."""
    hits = 0
    for op, _, _, j1, j2 in SequenceMatcher(None, hyp, ref, autojunk=False).get_opcodes():
        if op == "equal":
            hits += sum(c in letters for c in ref[j1:j2])
    return hits, sum(c in letters for c in ref)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Score each shot count, print the table and write the points to ``cfg.out``."""
    args: dict[str, Any] = OmegaConf.to_container(cfg)  # type: ignore[assignment]
    rng = random.Random(int(args["seed"]))
    shots = [int(s) for s in args["shots"]]
    by_lang: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in read_manifest(args["test"]):
        if float(row.get("duration", 0.0)) <= 4.0:
            by_lang[row["lang"]].append(row)
    model = from_pretrained(args["model"])
    rates = {k: ErrorRates() for k in shots}
    new_hits = {k: [0, 0] for k in shots}
    for lang, rows in sorted(by_lang.items()):
        for query in rows[: int(args["per_lang"])]:
            others = rng.sample([r for r in rows if r is not query], max(shots))
            texts = [normalize_transcript(r["text"], lang) for r in [query, *others]]
            done = respell(texts, rng)
            if done is None:
                continue
            spelt, rules = done
            wave = load_audio(query["audio"])
            examples = [(load_audio(r["audio"]), t, None) for r, t in zip(others, spelt[1:])]  # each read once
            for k in shots:
                hyp = LLMTranscriber(model, context=examples[:k], beam=1).transcribe_waves([wave])[0]
                rates[k].update([hyp], [spelt[0]], [lang])
                h, n = letter_recall(hyp, spelt[0], set(rules.values()))
                new_hits[k][0] += h
                new_hits[k][1] += n
    result: dict[str, Any] = {"args": args, "points": [
        {"shots": k, **{m: 100 * v for m, v in rates[k].summary()["all"].items() if m in ("cer", "wer")},
         "new_letter_recall": 100 * new_hits[k][0] / max(new_hits[k][1], 1), "new_letters": new_hits[k][1]}
        for k in shots]}
    print(f"{'shots':>5} {'CER %':>7} {'WER %':>7} {'new letters recalled %':>23}")
    for p in result["points"]:
        print(f"{p['shots']:>5} {p['cer']:>7.2f} {p['wer']:>7.2f} {p['new_letter_recall']:>23.1f}")
    with atomic_open(args["out"], "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2, ensure_ascii=False)
    return result


@hydra.main(version_base="1.3", config_path="../configs/benchmarks", config_name="incontext_respell")
def _cli(cfg: DictConfig) -> None:
    run(runner.require(cfg, "incontext_respell", "benchmarks"))


def main(argv: list[str]) -> dict[str, Any]:
    """``python benchmarks/incontext_respell.py`` in-process, ``argv`` its ``key=value`` words."""
    return runner.compose_and_run("incontext_respell", argv, run, runner.BENCHMARK_CONFIGS, "benchmarks")


if __name__ == "__main__":
    _cli()
