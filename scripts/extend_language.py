"""Extend a model to a new language: python scripts/extend_language.py model=<dir> lang=<code> [key=value ...]

Dispatches on <model>/config.json "model_type": sentence encoders go to text.extend (parallel=<eng-X tsv>),
CTC ASR models to speech.asr.extend. Each backend documents its own keys.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

from common.runner import parse_kv_args

# model_type -> "module:function" taking the key=value arguments as a dict.
BACKENDS = {
    "sentence_encoder": "text.extend:main",
    "ctc_conformer": "speech.asr.extend:main",
    "ctc_wav2vec2": "speech.asr.extend:main",
    "ctc_adapted": "speech.asr.extend:main",
}


def model_type(model_dir: str) -> str:
    """The ``model_type`` of a model directory's config.json, with a clear error when it cannot be read."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise SystemExit(f"model={model_dir}: no config.json there")
    try:
        return str(json.loads(path.read_text(encoding="utf-8"))["model_type"])
    except (json.JSONDecodeError, KeyError) as e:
        raise SystemExit(f"{path}: cannot read model_type ({e})") from e


def main(argv: list[str] | None = None) -> Any:
    args = parse_kv_args(sys.argv[1:] if argv is None else argv, usage=__doc__ or "")
    if not args.get("model"):
        raise SystemExit(f"model=<dir> is required\n{__doc__}")
    kind = model_type(args["model"])
    if kind not in BACKENDS:
        raise SystemExit(f"model_type {kind!r} has no language extension; known: {', '.join(BACKENDS)}")
    module, func = BACKENDS[kind].split(":")
    return getattr(importlib.import_module(module), func)(args)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
