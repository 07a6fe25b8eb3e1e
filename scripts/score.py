"""Score transcripts against references: python scripts/score.py hyp=<out.jsonl> [ref=<manifest.jsonl>]

Without ``ref``, the ``ref`` field that transcribe.py copies from a manifest is used. Both sides
are normalised the same way as training targets (case and punctuation removed). The summary goes to ``out``
(default ``<hyp>.scores.json``); keys in configs/inference/score.yaml.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from common import runner
from common.io import atomic_open, read_jsonl_lenient
from common.metrics import ErrorRates, format_table
from datamodules.manifest import read_manifest
from text.normalize import normalize_transcript


def score(hyp_path: str, ref_path: str | None = None, by: str | None = None) -> dict[str, dict[str, float]]:
    """CER/WER per reference language, or per value of the reference manifest's field ``by`` (speaker, ...)."""
    hyps = read_jsonl_lenient(hyp_path)
    # A transcript names its audio as its input did: the manifest's own path, or the file's absolute path.
    refs = {key: r for r in read_manifest(ref_path) for key in (r["audio_raw"], str(Path(r["audio"]).resolve()))
            } if ref_path else {}
    rates = ErrorRates()
    missing = 0
    for h in hyps:
        ref = refs[h["audio"]]["text"] if h["audio"] in refs else h.get("ref")
        if ref is None:
            missing += 1
            continue
        # The reference's language groups the scores: a misidentified language counts against the true one.
        lang = refs.get(h["audio"], {}).get("lang") or h.get("ref_lang") or h.get("lang") or "und"
        group = lang if by is None else str(refs.get(h["audio"], {}).get(by, "?"))
        rates.update([normalize_transcript(h["text"], lang)], [normalize_transcript(ref, lang)], [group])
    if missing:
        print(f"{missing} transcript(s) had no reference and were not scored", file=sys.stderr)
    return rates.summary()


def run(cfg: DictConfig) -> dict[str, dict[str, float]]:
    """Score ``cfg.hyp``, print the table and write the summary to ``cfg.out``."""
    if cfg.get("by") and not cfg.ref:
        raise SystemExit("score: by= groups by a field of the reference manifest, so it needs ref=<manifest.jsonl>")
    summary = score(cfg.hyp, cfg.ref, cfg.get("by"))
    print(format_table(summary, cfg.get("by") or "lang"))
    out = Path(cfg.out or Path(cfg.hyp).with_suffix(".scores.json"))
    with atomic_open(out, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    return summary


@hydra.main(version_base="1.3", config_path="../configs/inference", config_name="score")
def main(cfg: DictConfig) -> None:
    run(runner.require(cfg, "score"))


if __name__ == "__main__":
    main()
