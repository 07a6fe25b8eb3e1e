"""Linear probe: python scripts/clamp_probe.py model=<dir> attribute=<name> [modality=abc|midi|audio] [train=] [test=]

Keys and defaults: configs/inference/clamp_probe.yaml. Embeds the train and test manifests' files of one modality with
a frozen CLaMP 3 model, fits a logistic regression on the train embeddings for one attribute, and prints test
accuracy beside the majority-class baseline (a test value never seen in training counts as wrong).
"""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from omegaconf import DictConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import runner
from common.io import atomic_open
from datamodules.music import MODALITIES, read_rows
from music.clamp.encoder import MusicEncoder

log = logging.getLogger("clamp_probe")


def embed_split(enc: MusicEncoder, manifest: str, modality: str, attribute: str) -> tuple[np.ndarray, list[str]]:
    """Embeddings ``[N, E]`` and labels of the rows that have the attribute and a readable file."""
    rows = [r for r in read_rows(manifest, need=(modality,)) if r["attributes"].get(attribute) is not None]
    if not rows:
        raise SystemExit(f"{manifest}: no row has a {modality} file and the attribute {attribute!r}")
    got = enc.embed_files([r[modality] for r in rows])
    for bad in (g for g in got if isinstance(g, str)):
        log.warning("skipping %s", bad)
    keep = [(g, str(r["attributes"][attribute])) for g, r in zip(got, rows) if not isinstance(g, str)]
    return np.stack([g for g, _ in keep]), [label for _, label in keep]


def probe(cfg: DictConfig) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    if cfg.modality not in MODALITIES:
        raise SystemExit(f"modality={cfg.modality}: choose one of {', '.join(MODALITIES)}")
    runner.setup_threads(cfg.threads)
    enc = MusicEncoder.from_pretrained(cfg.model, audio_cache=cfg.audio_cache)
    x_train, y_train = embed_split(enc, cfg.train, cfg.modality, cfg.attribute)
    x_test, y_test = embed_split(enc, cfg.test, cfg.modality, cfg.attribute)
    if len(set(y_train)) < 2:
        raise SystemExit(f"{cfg.train}: the attribute {cfg.attribute!r} has one value only ({y_train[0]!r})")
    clf = LogisticRegression(C=float(cfg.C), max_iter=2000).fit(x_train, y_train)
    majority = Counter(y_train).most_common(1)[0][0]
    result = {"attribute": cfg.attribute, "modality": cfg.modality, "model": str(cfg.model),
              "accuracy": float(np.mean(clf.predict(x_test) == np.array(y_test))),
              "majority_baseline": float(np.mean([y == majority for y in y_test])),
              "classes": len(set(y_train)), "train": len(y_train), "test": len(y_test)}
    print(f"{cfg.attribute} from {cfg.modality}: accuracy {result['accuracy']:.3f} (majority class "
          f"{result['majority_baseline']:.3f}, {result['classes']} classes, {result['train']} train / "
          f"{result['test']} test)")
    if cfg.output:
        with atomic_open(cfg.output, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
    return result


@hydra.main(version_base="1.3", config_path="../configs/inference", config_name="clamp_probe")
def cli(cfg: DictConfig) -> None:
    probe(runner.require(cfg, "clamp_probe"))


def main(argv: list[str]) -> dict[str, Any]:
    """In-process entry (tests): the same run as the command line ``argv`` of ``key=value`` overrides."""
    return runner.compose_and_run("clamp_probe", argv, probe)


if __name__ == "__main__":
    cli()
