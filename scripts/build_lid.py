"""Language-ID head for a trained CTC model, fitted on its frozen encoder and saved into the model directory.

    python scripts/build_lid.py model=runs/train/myrun/model train=data/speech/train.jsonl dev=data/speech/dev.jsonl

The encoder frames of every training clip are computed once; the head (attentive statistics pooling and
an MLP, see speech/asr/lid.py) then trains on random 1-4 s crops of them, so it also names the language
of short segments. The ASR weights are untouched. Writes ``<model>/lid.safetensors`` and ``<model>/lid.json``,
which ``Transcriber.from_pretrained`` and ``transcribe.py`` (lid=true, the default when present) pick up.

Options: epochs=30, batch_size=64, lr=0.002, max_per_lang=<clips per language> (default all), device=cpu,
seed=0, threads=<n>.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import fields

import torch

from common.runner import parse_kv_args
from speech.asr.hub import load_model
from speech.asr.lid import save_lid
from speech.asr.lid_train import LIDTrainConfig, cache_manifest, frame_seconds_of, train_head


def train_config(args: dict[str, str]) -> LIDTrainConfig:
    """The training options given on the command line, typed by ``LIDTrainConfig``."""
    kw: dict[str, object] = {}
    for f in fields(LIDTrainConfig):
        if f.name in args:
            kw[f.name] = float(args[f.name]) if f.name in ("lr", "weight_decay", "full_prob") \
                or f.name.endswith("seconds") else int(args[f.name])
    return LIDTrainConfig(**kw)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_kv_args(sys.argv[1:] if argv is None else argv, required=("model", "train"), usage=__doc__ or "")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if "threads" in args:
        torch.set_num_threads(int(args["threads"]))
    cfg = train_config(args)
    device = args.get("device", "cpu")
    model, _ = load_model(args["model"], device)
    fs = frame_seconds_of(model, device)
    t0 = time.perf_counter()
    train = cache_manifest(model, args["train"], device, cfg.max_per_lang, cfg.seed, cfg.encode_batch)
    dev = cache_manifest(model, args["dev"], device, batch=cfg.encode_batch) if args.get("dev") else None
    t1 = time.perf_counter()
    head, metrics = train_head(train, dev, fs, cfg)
    t2 = time.perf_counter()
    path = save_lid(head, args["model"], train_clips=len(train.labels), **metrics)
    print(f"LID head over {len(head.cfg.langs)} languages ({', '.join(head.cfg.langs)}) from {len(train.labels)} "
          f"clips: encoding {t1 - t0:.0f} s, training {t2 - t1:.0f} s; "
          + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()) + f" -> {path}")
    return metrics


if __name__ == "__main__":
    main()
