"""Extend a model to a new language: python scripts/extend_language.py model=<dir> lang=<code> [key=value ...]

Dispatches on <model>/config.json "model_type" through ``common.commands.LANGUAGE_EXTENDERS``: sentence encoders
go to text.extend (parallel=<eng-X tsv>), CTC ASR models to speech.asr.extend (train=<manifest>). Each backend
documents its own keys; configs/inference/extend_language.yaml lists them all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from common import runner
from common.commands import LANGUAGE_EXTENDERS


def model_type(model_dir: str) -> str:
    """The ``model_type`` of a model directory's config.json, with a clear error when it cannot be read."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise SystemExit(f"model={model_dir}: no config.json there")
    try:
        return str(json.loads(path.read_text(encoding="utf-8"))["model_type"])
    except (json.JSONDecodeError, KeyError) as e:
        raise SystemExit(f"{path}: cannot read model_type ({e})") from e


def backend_args(cfg: DictConfig) -> dict[str, str]:
    """The keys given a value, as the ``key=value`` strings the backends parse (booleans as true/false)."""
    return {str(k): (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in cfg.items() if v is not None}


def run(cfg: DictConfig) -> Any:
    """Run the extension backend of the model's type; returns its report."""
    kind = model_type(cfg.model)
    if kind not in LANGUAGE_EXTENDERS:
        raise SystemExit(f"model_type {kind!r} has no language extension; known: {', '.join(LANGUAGE_EXTENDERS)}")
    return LANGUAGE_EXTENDERS.get(kind)(backend_args(cfg))


@hydra.main(version_base="1.3", config_path="../configs/inference", config_name="extend_language")
def main(cfg: DictConfig) -> None:
    run(runner.require(cfg, "extend_language"))


if __name__ == "__main__":
    main()
