"""Sentence embeddings: python scripts/embed_text.py model=<dir> input=<file.txt|manifest.jsonl> output=<file.npy>
    [lang=<code>] [batch_size=64] [kind=hf_encoder|llm_embedder|sentence_encoder] [pooling=mean] [threads=]

Keys and defaults: configs/inference/embed_text.yaml. The input is a text file, one sentence a line (ids are
line numbers), or a JSONL manifest of {"id", "text"[, "lang"]}. Writes one L2-normalised float32 row per input,
in input order, to <output> and the ids of those rows to <output stem>.ids.txt. Runs on common.batch_job: rows
are kept in <output>.partial as they are made, a re-run skips finished ids, and bad items (an empty line, a
broken manifest line) go to <output>.failed.jsonl; exit code 3 when there were any. The tower kind is the one
registered kind (text.towers.TEXT_TOWERS) that recognises <model>/config.json (kind= overrides).
"""

from __future__ import annotations

import logging
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import hydra
import numpy as np
import torch.nn.functional as F
from omegaconf import DictConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import runner
from common.batch_job import BatchJob, BatchReport, Failure, Item, NpyOutput, line_items, manifest_items
from text.towers import TEXT_TOWERS, TextTower, TextTowerConfig, build_text_tower, detect_tower_kind

log = logging.getLogger("embed_text")


def read_items(path: str) -> list[Item]:
    """A JSONL manifest (id + text) or a text file of lines; bad entries are failed items, not errors."""
    try:
        return manifest_items(path, require=("text",)) if Path(path).suffix.lower() == ".jsonl" else line_items(path)
    except FileNotFoundError as e:
        raise SystemExit(f"input: {e}") from None


def load_tower(cfg: DictConfig) -> tuple[TextTower, str]:
    """The tower of ``cfg.model``, of ``cfg.kind`` or else the kind that recognises the directory."""
    try:
        kind = cfg.kind or detect_tower_kind(cfg.model)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"model: {e}") from None
    if kind not in TEXT_TOWERS:
        raise SystemExit(f"kind={kind}: unknown text tower kind; known: {', '.join(TEXT_TOWERS)}")
    tower = build_text_tower(TextTowerConfig(kind=kind, path=cfg.model, pooling=cfg.pooling,
                                             max_length=cfg.max_length))
    return tower, kind


Vector = dict[str, list[float]]


def embedder(tower: TextTower, lang: str | None) -> Callable[[list[Item]], list[Vector | Failure]]:
    """``process`` for the batch job: one normalised vector per text, each manifest row in its own language."""

    def process(batch: list[Item]) -> list[Vector | Failure]:
        out: list[Vector | Failure] = [Failure("")] * len(batch)
        groups: dict[str | None, list[int]] = defaultdict(list)
        for i, it in enumerate(batch):
            row_lang = it.payload.get("lang") if isinstance(it.payload, dict) else None
            if row_lang is not None and not isinstance(row_lang, str):
                out[i] = Failure(f"field 'lang' must be a string, got {row_lang!r}")
            else:
                groups[row_lang or lang].append(i)
        for group_lang, idx in groups.items():
            texts = [batch[i].payload["text"] if isinstance(batch[i].payload, dict) else batch[i].payload for i in idx]
            emb = F.normalize(tower.encode(texts, lang=group_lang, batch_size=len(texts)).float(), dim=-1)  # [B, D]
            for i, vec in zip(idx, emb.numpy().astype(np.float32)):
                out[i] = {"embedding": vec.tolist()}  # float32 -> float -> JSON round-trips exactly
        return out

    return process


def run(cfg: DictConfig) -> tuple[np.ndarray, BatchReport]:
    """Embed every unfinished input of ``cfg.input`` into ``cfg.output``; the rows written and the job's report."""
    runner.setup_threads(cfg.get("threads"))
    items = read_items(cfg.input)
    tower, kind = load_tower(cfg)
    extended = sorted(getattr(tower.tokenizer, "extensions", {}))
    if extended and not cfg.lang:
        print(f"note: {cfg.model} cuts {', '.join(extended)} with pieces of its own; pass lang=<code> when the "
              "input is in one of them", file=sys.stderr)
    output = NpyOutput(Path(cfg.output))
    report = BatchJob(output, embedder(tower, cfg.lang or None), batch_size=cfg.batch_size, progress=cfg.progress,
                      desc="embedding", unit="text").run(items)
    rows = np.load(output.path)
    print(f"wrote {rows.shape[0]} x {rows.shape[1]} embeddings ({kind}) to {output.path}: {report.summary()}")
    if report.failed:
        lines = "\n".join(f"  {f['id']}: {f['reason']}" for f in report.failed)
        log.warning("%d input(s) skipped (listed in %s.failed.jsonl):\n%s", len(report.failed), cfg.output, lines)
    return rows, report


def embed(cfg: DictConfig) -> np.ndarray:
    """The rows written; exits with code 3 when some inputs failed."""
    rows, report = run(cfg)
    if report.failed:
        raise SystemExit(report.exit_code)
    return rows


@hydra.main(version_base="1.3", config_path="../configs/inference", config_name="embed_text")
def cli(cfg: DictConfig) -> None:
    embed(runner.require(cfg, "embed_text"))


def main(argv: list[str]) -> np.ndarray:
    """In-process entry (tests, notebooks): the same run as the command line ``argv`` of ``key=value`` overrides."""
    return runner.compose_and_run("embed_text", argv, embed)


if __name__ == "__main__":
    cli()
