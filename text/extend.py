"""Extend a trained sentence encoder to a new language from a few hundred English-X pairs, by distillation.

python scripts/extend_language.py model=<encoder dir> lang=tur_Latn parallel=<eng-tur .tsv> output=<dir>
    [pairs=200 steps=300 batch_size=32 lr=3e-3 dev=<held-out eng-tur .tsv> seed=0 threads=]
    [new_pieces=1000 update=new|all init=aligned|spelled fold_case=true mono=<more text, one sentence a line>]
    [bag_rows=65536]

The language gets BPE pieces of its own (up to ``new_pieces``, learnt from the pairs' target side and ``mono``,
case-folded unless ``fold_case=false``): the base tokenizer would cut an unseen language into letters and bytes,
which the encoder never learnt to compose. A new piece starts from the source words it co-occurs with in the pairs
(``init=aligned``; ``spelled`` averages the base pieces that spell it). With ``update=new`` (the default) only the
new pieces' embeddings learn, so every other language keeps its exact embeddings; ``update=all`` fine-tunes the
whole student. ``new_pieces=0`` keeps the base tokenizer and fine-tunes the whole student. An encoder with an n-gram
bag (``text.ngram_bag``, the real-text default) gives the new pieces' n-grams a block of ``bag_rows`` rows of their
own, which is what learns under ``update=new``.

Training runs under a Lightning Trainer: ``<output>.run/`` (or ``run_dir=``) gets ``checkpoints/last.ckpt`` (at the
end, and every ``ckpt_every=`` steps) and ``csv/metrics.csv``; ``resume=last`` (or a path) continues a run, e.g. to
more ``steps=``. ``precision=`` (default 32-true), ``accelerator=`` (auto) and ``devices=`` (1) as in train.py.
"""

from __future__ import annotations

import copy
import json
import logging
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from common.fit import FIT_KEYS, FitSettings
from common.fit import fit as run_fit
from common.io import atomic_open
from text.distill import DistillationModule, PairTextDataset, embed, pair_collate
from text.parallel import user_sentences
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


def piece_embeddings(model: SentenceEncoder, base: SentencePieceTokenizer, pieces: list[str],
                     aligned: Sequence[tuple[list[int], list[str]]] = (), top_k: int = 3) -> torch.Tensor:
    """Initial rows ``[N, d_model]`` for new pieces.

    A piece seen in the parallel pairs (``aligned``: source ids, target pieces per pair) starts as the
    Dice-weighted mean of the ``top_k`` source pieces it co-occurs with most (the Dice coefficient over pairs, a
    classic association score for reading a translation lexicon off a parallel text); any other piece as the mean
    of the base pieces that spell it.
    """
    table = model.tok_emb.weight.detach()
    src_count: Counter[int] = Counter()
    tgt_count: Counter[str] = Counter()
    joint: dict[str, Counter[int]] = defaultdict(Counter)
    for src_ids, tgt_pieces in aligned:
        src, tgt = set(src_ids), set(tgt_pieces)
        src_count.update(src)
        tgt_count.update(tgt)
        for piece in tgt:
            joint[piece].update(src)
    rows = []
    for piece in pieces:
        dice = {s: 2 * n / (src_count[s] + tgt_count[piece]) for s, n in joint[piece].items()}
        best = sorted(dice, key=lambda s: -dice[s])[:top_k]
        if best:
            w = torch.tensor([dice[s] for s in best], dtype=table.dtype)
            rows.append((w[:, None] * table[best]).sum(0) / w.sum())
            continue
        ids = base.sp.encode(piece.replace("▁", " ").strip() or piece)
        if not piece.startswith("▁") and len(ids) > 1 and base.sp.id_to_piece(ids[0]) == "▁":
            ids = ids[1:]  # a word-internal piece: drop the word-start marker the base model adds
        rows.append(table[ids].mean(0) if ids else table.mean(0))
    return torch.stack(rows) if rows else table.new_zeros(0, table.shape[1])


def new_language_student(teacher: SentenceEncoder, base: SentencePieceTokenizer, lang: str,
                         pairs: list[tuple[str, str]], workdir: str | Path, new_pieces: int = 1000,
                         mono: list[str] | None = None, init: str = "aligned", fold_case: bool = True,
                         bag_rows: int = 1 << 16) -> tuple[SentenceEncoder, SentencePieceTokenizer, int]:
    """A copy of ``teacher`` whose tokenizer (written to ``workdir``) cuts ``lang`` into BPE pieces of its own.

    Returns the student, its tokenizer and the number of new pieces, whose embedding rows follow the base ones
    (and, for an encoder with an n-gram bag, whose n-grams hash into a block of ``bag_rows`` bag rows of their own).
    ``fold_case`` lower-cases the language's text before cutting it, so a word at the start of a sentence is the
    same piece as inside one (twice the examples per word when the pairs are few).
    """
    if init not in ("aligned", "spelled"):
        raise ValueError(f"init must be 'aligned' or 'spelled', got {init!r}")
    tokenizer, pieces = base.extend(lang, [t for _, t in pairs] + list(mono or []), workdir, vocab_size=new_pieces,
                                    model_type="bpe", normalization="nmt_nfkc_cf" if fold_case else "nmt_nfkc")
    own = tokenizer.extensions[lang].sp
    aligned = [(src, own.encode(tgt, out_type=str))
               for src, (_, tgt) in zip(base.sp.encode([s for s, _ in pairs]), pairs)] if init == "aligned" else []
    student = copy.deepcopy(teacher)
    student.grow_vocab(piece_embeddings(teacher, base, pieces, aligned), pieces, bag_rows)  # no bag: ignored
    return student, tokenizer, len(pieces)


def extend(
    model_dir: str | Path, lang: str, pairs: list[tuple[str, str]], output: str | Path | None = None,
    steps: int = 300, batch_size: int = 32, lr: float = 3e-3, seed: int = 0,
    dev: list[tuple[str, str]] | None = None, new_pieces: int = 1000, update: str = "new",
    mono: list[str] | None = None, init: str = "aligned", fold_case: bool = True, fit: FitSettings | None = None,
    bag_rows: int = 1 << 16,
) -> dict[str, Any]:
    """Distil the encoder at ``model_dir`` onto ``lang``; writes the student to ``output`` when given.

    ``fit`` sets devices, precision, the run folder (checkpoints, CSV logs) and what to resume from.
    """
    if update not in ("new", "all"):
        raise ValueError(f"update must be 'new' or 'all', got {update!r}")
    L.seed_everything(seed, workers=True)
    config = read_config(model_dir)
    teacher, tokenizer = from_pretrained(model_dir)
    max_length = int(config["max_length"])
    report: dict[str, Any] = {"model": str(model_dir), "lang": lang, "pairs": len(pairs), "steps": steps, "lr": lr,
                              "new_pieces": 0, "update": update if new_pieces else "all"}
    if dev:
        report["dev_before"] = pair_errors(teacher, tokenizer, dev, lang)
    with tempfile.TemporaryDirectory(prefix="extend_tokenizer_") as workdir:
        student, new_rows_from = None, None
        if new_pieces:
            new_rows_from = len(tokenizer)
            student, tokenizer, report["new_pieces"] = new_language_student(
                teacher, tokenizer, lang, pairs, workdir, new_pieces, mono, init, fold_case, bag_rows)
        module = DistillationModule(teacher, lr=lr, warmup_steps=min(20, steps // 10 + 1), student=student,
                                    new_rows_from=new_rows_from if update == "new" else None)
        loader = DataLoader(PairTextDataset(pairs), batch_size=min(batch_size, len(pairs)), shuffle=True,
                            collate_fn=pair_collate(tokenizer, max_length, lang))
        start = time.perf_counter()
        trainer = run_fit(module, loader, fit or FitSettings(), max_steps=steps, gradient_clip_val=1.0)
        report["seconds"] = round(time.perf_counter() - start, 2)
        report["final_loss"] = {k: float(v) for k, v in trainer.callback_metrics.items()}
        student = module.student.eval()
        if dev:
            report["dev_after"] = pair_errors(student, tokenizer, dev, lang)
        if output is not None:
            langs = sorted({*config.get("langs", []), lang})
            held_out = [x for x in config.get("held_out", []) if x != lang]
            extended = {k: report[k] for k in ("lang", "pairs", "steps", "new_pieces", "update")}
            save_pretrained(student, tokenizer, output, langs=langs, held_out=held_out,
                            extended={"from": str(model_dir), **extended})
            with atomic_open(Path(output) / "extend.json", "w", encoding="utf-8") as f:
                json.dump(report, f, indent=2, ensure_ascii=False)
    return report


def recipe_options(args: Mapping[str, Any]) -> dict[str, Any]:
    """``extend``'s recipe keywords (new_pieces, update, init, fold_case, mono) from key=value arguments."""
    return {"new_pieces": int(args.get("new_pieces", 1000)), "update": args.get("update", "new"),
            "bag_rows": int(args.get("bag_rows", 1 << 16)),
            "init": args.get("init", "aligned"),
            "fold_case": str(args.get("fold_case", "true")).lower() not in ("false", "0", "no"),
            "mono": list(user_sentences(args["mono"])) if args.get("mono") else None}


def main(args: Mapping[str, Any]) -> dict[str, Any]:
    """Entry point of ``scripts/extend_language.py`` for text encoders (args: the key=value pairs)."""
    missing = [k for k in REQUIRED if not args.get(k)]
    if missing:
        raise SystemExit(f"missing argument(s): {', '.join(missing)}\n{__doc__}")
    known = {*REQUIRED, "pairs", "steps", "batch_size", "lr", "dev", "seed", "threads", "new_pieces", "update",
             "mono", "init", "fold_case", "bag_rows", *FIT_KEYS}
    unknown = sorted(set(args) - known)
    if unknown:
        raise SystemExit(f"unknown argument(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if args.get("threads"):
        torch.set_num_threads(int(args["threads"]))
    pairs = read_pairs(args["parallel"], int(args.get("pairs", 200)))
    dev = read_pairs(args["dev"]) if args.get("dev") else None
    report = extend(args["model"], str(args["lang"]), pairs, args["output"], steps=int(args.get("steps", 300)),
                    batch_size=int(args.get("batch_size", 32)), lr=float(args.get("lr", 3e-3)),
                    seed=int(args.get("seed", 0)), dev=dev, **recipe_options(args),
                    fit=FitSettings.from_args(args, run_dir=f"{args['output']}.run"))
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return report
