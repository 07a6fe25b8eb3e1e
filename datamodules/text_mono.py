"""Monolingual text for language-model training: every line of the mono folders, held-out sentences to score.

Shares the parallel datamodule's corpus handling (languages, mono folders, SentencePiece tokenizer trained on all
mono sets), so the LM and the sentence encoder read the same text with the same pieces.
"""

from __future__ import annotations

import logging
from typing import Any

from torch.utils.data import DataLoader

from datamodules.bucketing import DurationBatchSampler
from datamodules.text import ParallelTextDataModule
from text.tokenizer import BOS_ID, pad_ids

log = logging.getLogger(__name__)


class TextLMDataModule(ParallelTextDataModule):
    """Sentences as ``<s> pieces </s>``: training from ``mono_dir`` (every training language), validation and test
    from the sentences of ``val_manifest`` / ``test_manifest`` (no line of them is trained on by the sentence
    encoder either). Takes ``ParallelTextDataModule``'s arguments; set ``held_out: []`` for an LM of every language.
    """

    def _texts(self, stage: str) -> list[str]:
        if stage == "train":
            texts = [t for lang in self.train_langs() for t in self.mono_texts(lang) if t.strip()]
            log.info("LM training text: %d lines in %d languages", len(texts), len(self.train_langs()))
            return texts
        langs = self.all_langs()
        rows = self.rows(stage)[:self.hp.eval_sentences]
        return [r[lang] for r in rows for lang in langs if lang in r]

    def _ids(self, texts: list[str]) -> list[list[int]]:
        return [[BOS_ID, *i] for i in self.tokenizer.encode(texts, None, self.hp.max_length - 1)]

    def _collate(self, items: list[list[int]]) -> dict[str, Any]:
        ids, mask = pad_ids(items)
        return {"ids": ids, "mask": mask}

    def model_kwargs(self) -> dict[str, Any]:
        return {"vocab_size": len(self.tokenizer), "tokenizer_path": str(self.hp.tokenizer_path),
                "langs": self.train_langs()}

    def train_dataloader(self) -> DataLoader:
        ids = self._ids(self._texts("train"))
        if len(ids) < 2:
            raise ValueError(f"{self.hp.mono_dir}: fewer than 2 lines of training text")
        trainer = self.trainer
        # Lines of similar length share a batch, so little compute goes to padding.
        sampler = DurationBatchSampler(
            [len(i) for i in ids], max_batch_seconds=self.hp.batch_size * self.hp.batch_tokens_per_item,
            max_batch_size=self.hp.batch_size, num_buckets=self.hp.num_buckets, shuffle=True, seed=self.hp.seed,
            rank=trainer.global_rank if trainer else 0, world_size=trainer.world_size if trainer else 1,
        )
        data: Any = ids  # a list serves as a map-style dataset
        return DataLoader(data, batch_sampler=sampler, collate_fn=self._collate, num_workers=self.hp.num_workers)

    def _eval_loader(self, stage: str) -> DataLoader:
        data: Any = self._ids(self._texts(stage))
        return DataLoader(data, batch_size=self.hp.batch_size, shuffle=False, collate_fn=self._collate,
                          num_workers=self.hp.num_workers)
