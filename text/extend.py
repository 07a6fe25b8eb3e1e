"""Extend a trained sentence encoder to a new language from a few hundred English-X pairs, by distillation.

python scripts/extend_language.py model=<encoder dir> lang=tur_Latn parallel=<eng-tur .tsv> output=<dir>
    [pairs=200 steps=300 batch_size=32 lr=1e-3 dev=<held-out eng-tur .tsv> seed=0 threads=]

The tokenizer is reused as is: byte fallback covers characters it never saw.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from common.io import atomic_open
from text.distill import DistillationModule, PairTextDataset, embed, pair_collate
from text.sentence_encoder import SentenceEncoder, from_pretrained, read_config, save_pretrained
from text.tokenizer import SentencePieceTokenizer
from text.xsim import xsim_error

log = logging.getLogger(__name__)
REQUIRED = ("model", "lang", "parallel", "output")


def read_pairs(path: str | Path, limit: int | None = None) -> list[tuple[str, str]]:
    """``source<TAB>target`` lines; a malformed line raises an error naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"parallel file not found: {path}")
    pairs: list[tuple[str, str]] = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            cols = line.split("\t")
            if len(cols) != 2 or not cols[0].strip() or not cols[1].strip():
                raise ValueError(f"{path}:{n}: expected 'source<TAB>target' with two non-empty columns")
            pairs.append((cols[0].strip(), cols[1].strip()))
            if limit is not None and len(pairs) >= limit:
                break
    if not pairs:
        raise ValueError(f"{path}: no sentence pairs")
    return pairs


def pair_errors(model: SentenceEncoder, tokenizer: SentencePieceTokenizer, pairs: list[tuple[str, str]],
                lang: str) -> dict[str, float]:
    """xsim error (ratio margin) eng->lang and lang->eng on aligned pairs."""
    src = embed(model, tokenizer, [s for s, _ in pairs], "eng_Latn")
    tgt = embed(model, tokenizer, [t for _, t in pairs], lang)
    return {f"eng->{lang}": xsim_error(src, tgt), f"{lang}->eng": xsim_error(tgt, src)}


def extend(
    model_dir: str | Path, lang: str, pairs: list[tuple[str, str]], output: str | Path | None = None,
    steps: int = 300, batch_size: int = 32, lr: float = 1e-3, seed: int = 0,
    dev: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """Distil the encoder at ``model_dir`` onto ``lang``; writes the student to ``output`` when given."""
    L.seed_everything(seed, workers=True)
    config = read_config(model_dir)
    teacher, tokenizer = from_pretrained(model_dir)
    max_length = int(config["max_length"])
    report: dict[str, Any] = {"model": str(model_dir), "lang": lang, "pairs": len(pairs), "steps": steps}
    if dev:
        report["dev_before"] = pair_errors(teacher, tokenizer, dev, lang)
    module = DistillationModule(teacher, lr=lr, warmup_steps=min(20, steps // 10 + 1))
    loader = DataLoader(PairTextDataset(pairs), batch_size=min(batch_size, len(pairs)), shuffle=True,
                        collate_fn=pair_collate(tokenizer, max_length, lang))
    trainer = L.Trainer(max_steps=steps, max_epochs=-1, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        gradient_clip_val=1.0)
    start = time.perf_counter()
    trainer.fit(module, loader)
    report["seconds"] = round(time.perf_counter() - start, 2)
    report["final_loss"] = {k: float(v) for k, v in trainer.callback_metrics.items()}
    student = module.student.eval()
    if dev:
        report["dev_after"] = pair_errors(student, tokenizer, dev, lang)
    if output is not None:
        langs = sorted({*config.get("langs", []), lang})
        held_out = [x for x in config.get("held_out", []) if x != lang]
        save_pretrained(student, tokenizer, output, langs=langs, held_out=held_out,
                        extended={"from": str(model_dir), "lang": lang, "pairs": len(pairs), "steps": steps})
        with atomic_open(Path(output) / "extend.json", "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2, ensure_ascii=False)
    return report


def main(args: dict[str, str]) -> dict[str, Any]:
    """Entry point of ``scripts/extend_language.py`` for text encoders (args: the key=value pairs)."""
    missing = [k for k in REQUIRED if not args.get(k)]
    if missing:
        raise SystemExit(f"missing argument(s): {', '.join(missing)}\n{__doc__}")
    known = {*REQUIRED, "pairs", "steps", "batch_size", "lr", "dev", "seed", "threads"}
    unknown = sorted(set(args) - known)
    if unknown:
        raise SystemExit(f"unknown argument(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if args.get("threads"):
        torch.set_num_threads(int(args["threads"]))
    pairs = read_pairs(args["parallel"], int(args.get("pairs", 200)))
    dev = read_pairs(args["dev"]) if args.get("dev") else None
    report = extend(args["model"], args["lang"], pairs, args["output"], steps=int(args.get("steps", 300)),
                    batch_size=int(args.get("batch_size", 32)), lr=float(args.get("lr", 1e-3)),
                    seed=int(args.get("seed", 0)), dev=dev)
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return report
