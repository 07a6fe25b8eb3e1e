"""Embed one sentence per line: python scripts/embed_text.py model=<dir> input=<file.txt> output=<file.npy>
    [lang=<code>] [batch_size=64] [kind=hf_encoder|llm_embedder|sentence_encoder] [pooling=mean] [threads=]

Writes one L2-normalised float32 row per input line, in order. The tower kind comes from <model>/config.json:
this suite's sentence encoders name model_type "sentence_encoder"; a transformers directory is an "llm_embedder"
when its architectures are causal LMs and an "hf_encoder" otherwise (kind= overrides).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.io import atomic_open
from common.runner import parse_kv_args
from text.towers import TOWERS, TextTowerConfig, build_text_tower

KNOWN = ("model", "input", "output", "lang", "batch_size", "kind", "pooling", "threads", "max_length")


def tower_kind(model_dir: str) -> str:
    """The tower kind a model directory holds, read from its config.json."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise SystemExit(f"model={model_dir}: no config.json there")
    config = json.loads(path.read_text(encoding="utf-8"))
    if config.get("model_type") == "sentence_encoder":
        return "sentence_encoder"
    causal = any(str(a).endswith("ForCausalLM") for a in config.get("architectures") or [])
    return "llm_embedder" if causal else "hf_encoder"


def read_lines(path: str) -> list[str]:
    """Input sentences; an empty line is an error naming the file and line number."""
    p = Path(path)
    if not p.is_file():
        raise SystemExit(f"input={path}: file not found")
    lines = p.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line, it does not start an empty one
    for n, line in enumerate(lines, 1):
        if not line.strip():
            raise SystemExit(f"{path}:{n}: empty line (every line must hold one sentence)")
    return [line.rstrip("\r") for line in lines]


def main(argv: list[str] | None = None) -> np.ndarray:
    args = parse_kv_args(sys.argv[1:] if argv is None else argv, dict.fromkeys(KNOWN, ""), ("model", "input", "output"),
                         __doc__ or "")
    if args.get("threads"):
        torch.set_num_threads(int(args["threads"]))
    kind = args.get("kind") or tower_kind(args["model"])
    if kind not in TOWERS:
        raise SystemExit(f"unknown kind {kind!r}; known kinds: {', '.join(TOWERS)}")
    texts = read_lines(args["input"])
    cfg = TextTowerConfig(kind=kind, path=args["model"], pooling=args.get("pooling") or "mean",
                          max_length=int(args.get("max_length") or 128))
    tower = build_text_tower(cfg)
    extended = sorted(getattr(tower.tokenizer, "extensions", {}))
    if extended and not args.get("lang"):
        print(f"note: {args['model']} cuts {', '.join(extended)} with pieces of its own; pass lang=<code> when the "
              "input is in one of them", file=sys.stderr)
    emb = tower.encode(texts, lang=args.get("lang") or None, batch_size=int(args.get("batch_size") or 64))
    rows = F.normalize(emb.float(), dim=-1).numpy().astype(np.float32)  # [N, D]
    with atomic_open(args["output"], "wb") as f:
        np.save(f, rows)
    print(f"wrote {rows.shape[0]} x {rows.shape[1]} embeddings ({kind}) to {args['output']}")
    return rows


if __name__ == "__main__":
    main()
