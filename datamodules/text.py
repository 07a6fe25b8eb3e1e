"""Parallel sentences for sentence-encoder training: pairs across language pairs, evaluation sets for xsim.

Reads parallel JSONL (``{"id", "meaning", "texts": {lang: sentence}}`` per line, one meaning in several languages),
from one manifest or several named ones mixed by weight (real and generated text), and trains the SentencePiece
tokenizer on every ``mono/<lang>.txt`` of the configured mono folders when it is absent.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from datamodules.bucketing import DurationBatchSampler
from text.parallel import PIVOT, aligned_sets, read_parallel  # noqa: F401  (aligned_sets: re-exported)
from text.tokenizer import SentencePieceTokenizer, pad_ids

log = logging.getLogger(__name__)
Paths = str | Mapping[str, str] | Sequence[str]


def named_paths(paths: Paths | None) -> dict[str, str]:
    """``{name: path}`` of a path, a list of paths or a mapping (Hydra configs give any of the three)."""
    if not paths:
        return {}
    if isinstance(paths, str):
        return {"default": paths}
    if isinstance(paths, Mapping):
        return {str(k): str(v) for k, v in paths.items() if v}
    return {str(i): str(v) for i, v in enumerate(paths)}


def mix_rows(sources: dict[str, list[dict[str, str]]], weights: Mapping[str, float] | None, seed: int = 0,
             ) -> list[dict[str, str]]:
    """Rows of every source, each source's share of the result set by ``weights`` (all rows once when ``None``).

    The result has as many rows as all sources together; a source above its own size is repeated (whole copies,
    then a random remainder), one below it is a random subset, and one missing from ``weights`` gets no rows.
    """
    if not weights or len(sources) == 1:  # one source has nothing to mix (a single data.train_manifest override)
        return [r for rows in sources.values() for r in rows]
    unknown = set(weights) - set(sources)
    if unknown:
        raise ValueError(f"data.train_weights names {sorted(unknown)}, not in data.train_manifest {sorted(sources)}")
    total_w = sum(float(weights.get(k, 0.0)) for k in sources)
    if total_w <= 0:
        raise ValueError("data.train_weights: the weights must sum to more than 0")
    n = sum(len(rows) for rows in sources.values())
    rng = random.Random(seed)
    out: list[dict[str, str]] = []
    for name, rows in sources.items():
        want = round(n * float(weights.get(name, 0.0)) / total_w)
        if rows and want:
            out += rows * (want // len(rows)) + rng.sample(rows, want % len(rows))
    return out


class PairDataset(Dataset):
    """One item per meaning and epoch: a random pair of distinct training languages, ``pivot_share`` from English."""

    def __init__(self, rows: list[dict[str, str]], langs: Sequence[str], pivot_share: float = 0.5):
        kept = ({lang: r[lang] for lang in langs if lang in r} for r in rows)  # real rows carry many more languages
        self.rows = [r for r in kept if len(r) >= 2]
        self.langs = list(langs)
        self.pivot_share = pivot_share

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[str, str, str, str]:
        row = self.rows[i]
        have = [lang for lang in self.langs if lang in row]
        if PIVOT in have and len(have) > 1 and float(torch.rand(())) < self.pivot_share:
            a = PIVOT
            others = [lang for lang in have if lang != PIVOT]
            b = others[int(torch.randint(len(others), ()))]
        else:
            a, b = (have[int(j)] for j in torch.randperm(len(have))[:2])
        return a, row[a], b, row[b]


class ParallelTextDataModule(L.LightningDataModule):
    """Batches of translation pairs for training; aligned sentence sets per language for xsim on dev and test."""

    def __init__(
        self,
        train_manifest: Paths,
        val_manifest: str | None = None,
        test_manifest: str | None = None,
        mono_dir: Paths | None = None,
        train_weights: dict[str, float] | None = None,
        train_rows: dict[str, int] | None = None,
        ood_manifest: str | None = None,
        tokenizer_path: str = "tokenizer.model",
        vocab_size: int = 8000,
        tokenizer_type: str = "unigram",
        tokenizer_coverage: float = 0.9995,
        tokenizer_normalization: str = "nmt_nfkc",
        langs: list[str] | None = None,
        held_out: list[str] | None = None,
        batch_size: int = 128,
        batch_tokens_per_item: int = 24,
        num_buckets: int = 20,
        max_length: int = 64,
        pivot_share: float = 0.5,
        eval_sentences: int = 500,
        num_workers: int = 0,
        seed: int = 0,
    ):
        """``train_manifest``: one path or ``{name: path}`` mixed by ``train_weights`` (``{name: weight}``, shares
        of the training rows) after ``train_rows`` (``{name: n}``) keeps each source's first ``n`` rows;
        ``mono_dir``: one folder or several; ``tokenizer_coverage``: SentencePiece's share of characters that get
        pieces (the rest fall back to bytes; 1.0 for Chinese beside alphabets); ``tokenizer_normalization``:
        SentencePiece's rule, kept in the model (``nmt_nfkc_cf`` also folds case); ``ood_manifest``: a second test
        split (held-out domains) that ``evaluate`` scores beside ``test_manifest``."""
        super().__init__()
        self.save_hyperparameters(logger=False)
        self._rows: dict[str, list[dict[str, str]]] = {}
        self._tokenizer: SentencePieceTokenizer | None = None
        self._all_langs: list[str] | None = None

    @property
    def hp(self) -> Any:
        return self.hparams

    def rows(self, stage: str) -> list[dict[str, str]]:
        if stage not in self._rows:
            if stage == "train":
                self._rows[stage] = self._train_rows()
            else:
                path = self.hparams[f"{stage}_manifest"]
                if not path:
                    raise ValueError(f"data.{stage}_manifest is not set")
                self._rows[stage] = read_parallel(path)
        return self._rows[stage]

    def _train_rows(self) -> list[dict[str, str]]:
        paths = named_paths(self.hp.train_manifest)
        if not paths:
            raise ValueError("data.train_manifest is not set")
        limits = dict(self.hp.train_rows or {})
        unknown = set(limits) - set(paths)
        if unknown:
            raise ValueError(f"data.train_rows names {sorted(unknown)}, not in data.train_manifest {sorted(paths)}")
        sources = {k: read_parallel(p)[:limits[k]] if k in limits else read_parallel(p) for k, p in paths.items()}
        rows = mix_rows(sources, self.hp.train_weights, self.hp.seed)
        log.info("training rows: %s -> %d mixed", ", ".join(f"{k} {len(v)}" for k, v in sources.items()), len(rows))
        if not rows:
            raise ValueError(f"no training rows in {', '.join(paths.values())} (data.train_rows, data.train_weights)")
        return rows

    def all_langs(self) -> list[str]:
        """Languages of the training rows (those of the configured list when set), held-out ones included."""
        if self._all_langs is None:  # a pass over every row (200k real ones): once, not at each of ~30 calls
            present = {lang for r in self.rows("train") for lang in r}
            self._all_langs = sorted(present & set(self.hp.langs) if self.hp.langs else present)
        return self._all_langs

    def held_out(self) -> list[str]:
        return [lang for lang in self.hp.held_out or [] if lang in self.all_langs()]

    def train_langs(self) -> list[str]:
        return [lang for lang in self.all_langs() if lang not in set(self.held_out())]

    @property
    def tokenizer(self) -> SentencePieceTokenizer:
        """The saved tokenizer, or one trained now on the training languages' monolingual text."""
        if self._tokenizer is None:
            self._tokenizer = SentencePieceTokenizer.load_or_train(
                self.hp.tokenizer_path, self._tokenizer_texts, self.hp.vocab_size, model_type=self.hp.tokenizer_type,
                character_coverage=self.hp.tokenizer_coverage, normalization=self.hp.tokenizer_normalization,
            )
        return self._tokenizer

    def mono_texts(self, lang: str) -> list[str]:
        """``<lang>.txt`` of every mono folder, the training rows' sentences when no folder has the language."""
        files = [Path(d) / f"{lang}.txt" for d in named_paths(self.hp.mono_dir).values()]
        texts = [line for f in files if f.is_file() for line in f.read_text(encoding="utf-8").splitlines()]
        return texts or [r[lang] for r in self.rows("train") if lang in r]

    def _tokenizer_texts(self) -> list[str]:
        # Held-out languages stay unseen, as a new language would be.
        return [t for lang in self.train_langs() for t in self.mono_texts(lang)]

    def model_kwargs(self) -> dict[str, Any]:
        """What the model needs from the data before it can be built."""
        return {
            "vocab_size": len(self.tokenizer), "tokenizer_path": str(self.hp.tokenizer_path),
            "langs": self.train_langs(), "held_out": self.held_out(),
        }

    def _collate_pairs(self, items: list[tuple[str, str, str, str]]) -> dict[str, Any]:
        n = self.hp.max_length
        ids_a, mask_a = pad_ids([self.tokenizer.encode([t], la, n)[0] for la, t, _, _ in items])
        ids_b, mask_b = pad_ids([self.tokenizer.encode([t], lb, n)[0] for _, _, lb, t in items])
        return {"ids_a": ids_a, "mask_a": mask_a, "ids_b": ids_b, "mask_b": mask_b,
                "langs_a": [i[0] for i in items], "langs_b": [i[2] for i in items]}

    def _collate_eval(self, items: list[tuple[str, int, str]]) -> dict[str, Any]:
        ids, mask = pad_ids([self.tokenizer.encode([t], lang, self.hp.max_length)[0] for lang, _, t in items])
        return {"ids": ids, "mask": mask, "langs": [i[0] for i in items], "index": [i[1] for i in items]}

    def train_dataloader(self) -> DataLoader:
        ds = PairDataset(self.rows("train"), self.train_langs(), self.hp.pivot_share)
        if len(ds) < 2:
            raise ValueError(f"{self.hp.train_manifest}: fewer than 2 rows with two training languages")
        # Meanings of similar length share a batch: padding would otherwise more than double the compute.
        lengths = self._row_lengths(ds.rows)
        trainer = self.trainer
        sampler = DurationBatchSampler(
            lengths, max_batch_seconds=self.hp.batch_size * self.hp.batch_tokens_per_item,
            max_batch_size=self.hp.batch_size, num_buckets=self.hp.num_buckets, shuffle=True, seed=self.hp.seed,
            rank=trainer.global_rank if trainer else 0, world_size=trainer.world_size if trainer else 1,
        )
        return DataLoader(ds, batch_sampler=sampler, collate_fn=self._collate_pairs, num_workers=self.hp.num_workers,
                          persistent_workers=self.hp.num_workers > 0)

    def _row_lengths(self, rows: list[dict[str, str]], chunk: int = 65536) -> list[int]:
        """Each row's longest sentence in tokens, encoded ``chunk`` sentences a call (one call per row was a large
        share of the setup on 200k real rows; docs/text.md)."""
        flat = [(k, t) for k, r in enumerate(rows) for t in r.values()]
        lengths = [0] * len(rows)
        for start in range(0, len(flat), chunk):
            part = flat[start:start + chunk]
            ids = self.tokenizer.encode([t for _, t in part], max_length=self.hp.max_length)
            for (k, _), i in zip(part, ids):
                lengths[k] = max(lengths[k], len(i))
        return lengths

    def eval_items(self, stage: str) -> list[tuple[str, int, str]]:
        """(lang, row index, sentence) of the first ``eval_sentences`` rows with two or more corpus languages.

        Each language pair is scored on the rows both have (``text.xsim.pairwise_matrix``), so real text, where a
        row lacks some languages, evaluates as well as the generated corpus, where every row has them all. Ordered
        row by row, so even a single batch (fast_dev_run) holds aligned sentences of several languages.
        """
        langs = self.all_langs()
        rows = [r for r in self.rows(stage) if sum(lang in r for lang in langs) >= 2][:self.hp.eval_sentences]
        return [(lang, i, r[lang]) for i, r in enumerate(rows) for lang in langs if lang in r]

    def _eval_loader(self, stage: str) -> DataLoader:
        items: Any = self.eval_items(stage)  # a list serves as a map-style dataset
        return DataLoader(items, batch_size=self.hp.batch_size, shuffle=False,
                          collate_fn=self._collate_eval, num_workers=self.hp.num_workers)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")
