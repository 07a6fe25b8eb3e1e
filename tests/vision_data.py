"""A tiny corpus=vision build (tens of images) for the image-text datamodule and FLAME tests."""

from __future__ import annotations

from pathlib import Path

from datamodules.corpus.vision import VisionCorpusConfig, build_vision_corpus


def write_tiny_vision_corpus(out: Path, **overrides: object) -> Path:
    """``corpus=vision`` at tiny size under ``out``: 40 train, 12 dev/test/test_seen images of 32 px, 16 a shard."""
    sizes = {"train": 40, "dev": 12, "test": 12, "test_seen": 12, "image_size": 32, "shard_size": 16}
    build_vision_corpus(VisionCorpusConfig(out_dir=str(out), **{**sizes, **overrides}))  # type: ignore[arg-type]
    return out


def tiny_image_text_overrides(root: Path) -> list[str]:
    """``data.*`` overrides pointing configs/data/image_text.yaml at a tiny corpus (train shards, folder dev)."""
    return [f"data.train_path={root}/shards/train", f"data.val_path={root}/folder/dev",
            f"data.test_path={{test: {root}/shards/test, test_seen: {root}/folder/test_seen}}",
            "data.image_size=32", "data.batch_size=4", "data.shuffle_buffer=8"]
