"""Parallel sentences for sentence-encoder training: pairs across language pairs, aligned sets for xsim.

Reads the parallel JSONL of the text corpus (``{"id", "meaning", "texts": {lang: sentence}}`` per line, the same
meaning in every language) and trains the SentencePiece tokenizer on ``mono/<lang>.txt`` when it is absent.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from datamodules.bucketing import DurationBatchSampler
from text.parallel import aligned_sets, read_parallel
from text.tokenizer import SentencePieceTokenizer, pad_ids

log = logging.getLogger(__name__)
PIVOT = "eng_Latn"


class PairDataset(Dataset):
    """One item per meaning and epoch: a random pair of distinct training languages, ``pivot_share`` from English."""

    def __init__(self, rows: list[dict[str, str]], langs: Sequence[str], pivot_share: float = 0.5):
        self.rows = [r for r in rows if sum(lang in r for lang in langs) >= 2]
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
        train_manifest: str,
        val_manifest: str | None = None,
        test_manifest: str | None = None,
        mono_dir: str | None = None,
        tokenizer_path: str = "tokenizer.model",
        vocab_size: int = 8000,
        tokenizer_type: str = "unigram",
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
        super().__init__()
        self.save_hyperparameters(logger=False)
        self._rows: dict[str, list[dict[str, str]]] = {}
        self._tokenizer: SentencePieceTokenizer | None = None

    @property
    def hp(self) -> Any:
        return self.hparams

    def rows(self, stage: str) -> list[dict[str, str]]:
        if stage not in self._rows:
            path = self.hparams[f"{stage}_manifest"]
            if not path:
                raise ValueError(f"data.{stage}_manifest is not set")
            self._rows[stage] = read_parallel(path)
        return self._rows[stage]

    def all_langs(self) -> list[str]:
        """Languages of the corpus (or the configured list), held-out ones included."""
        if self.hp.langs:
            return sorted(self.hp.langs)
        return sorted({lang for r in self.rows("train") for lang in r})

    def held_out(self) -> list[str]:
        return [lang for lang in self.hp.held_out or [] if lang in self.all_langs()]

    def train_langs(self) -> list[str]:
        return [lang for lang in self.all_langs() if lang not in set(self.held_out())]

    @property
    def tokenizer(self) -> SentencePieceTokenizer:
        """The saved tokenizer, or one trained now on the training languages' monolingual text."""
        if self._tokenizer is None:
            path = Path(self.hp.tokenizer_path)
            if path.is_file():
                self._tokenizer = SentencePieceTokenizer(path)
            else:
                self._tokenizer = SentencePieceTokenizer.train(
                    self._tokenizer_texts(), path, self.hp.vocab_size, self.hp.tokenizer_type
                )
                log.info("trained a %d-piece tokenizer: %s", len(self._tokenizer), path)
        return self._tokenizer

    def _tokenizer_texts(self) -> list[str]:
        langs = self.train_langs()  # held-out languages stay unseen, as a new language would be
        mono = Path(self.hp.mono_dir) if self.hp.mono_dir else None
        texts: list[str] = []
        for lang in langs:
            f = mono / f"{lang}.txt" if mono else None
            if f is not None and f.is_file():
                texts += f.read_text(encoding="utf-8").splitlines()
            else:
                texts += [r[lang] for r in self.rows("train") if lang in r]
        return texts

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
        lengths = [max(len(i) for i in self.tokenizer.encode(list(r.values()), max_length=self.hp.max_length))
                   for r in ds.rows]
        trainer = self.trainer
        sampler = DurationBatchSampler(
            lengths, max_batch_seconds=self.hp.batch_size * self.hp.batch_tokens_per_item,
            max_batch_size=self.hp.batch_size, num_buckets=self.hp.num_buckets, shuffle=True, seed=self.hp.seed,
            rank=trainer.global_rank if trainer else 0, world_size=trainer.world_size if trainer else 1,
        )
        return DataLoader(ds, batch_sampler=sampler, collate_fn=self._collate_pairs, num_workers=self.hp.num_workers)

    def eval_items(self, stage: str) -> list[tuple[str, int, str]]:
        """(lang, meaning index, sentence) of the aligned evaluation sets, every language.

        Ordered meaning by meaning, so even a single batch (fast_dev_run) holds aligned sentences of every language.
        """
        sets = aligned_sets(self.rows(stage), self.all_langs(), self.hp.eval_sentences)
        n = len(next(iter(sets.values()), []))
        return [(lang, i, sets[lang][i]) for i in range(n) for lang in sets]

    def _eval_loader(self, stage: str) -> DataLoader:
        items: Any = self.eval_items(stage)  # a list serves as a map-style dataset
        return DataLoader(items, batch_size=self.hp.batch_size, shuffle=False,
                          collate_fn=self._collate_eval, num_workers=self.hp.num_workers)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")
