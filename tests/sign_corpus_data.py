"""A tiny corpus=sign build (tens of clips) for the sign corpus tests (and any test that wants the real layout)."""

from __future__ import annotations

from pathlib import Path

from datamodules.corpus.sign import SignCorpusConfig, build_sign_corpus

TINY = {"train_sentences": 12, "train_clips": 20, "dev_sentences": 3, "test_sentences": 4, "signers": 6,
        "heldout_signers": 2, "pose_file_every": 3}
"""Sizes of the tiny build: 20 train clips over 12 sentences by 4 signers, 2 held-out signers for dev and test."""


def write_tiny_sign_corpus(out: Path, **overrides: object) -> Path:
    """``corpus=sign`` at tiny size under ``out`` (a .pose file for every third clip)."""
    build_sign_corpus(SignCorpusConfig(out_dir=str(out), **{**TINY, **overrides}))  # type: ignore[arg-type]
    return out
