"""Multilingual knowledge distillation (Reimers & Gurevych, 2020, "Making Monolingual Sentence Embeddings
Multilingual using Knowledge Distillation"): a student learns to put a translation where the teacher puts its source.
"""

from __future__ import annotations

import copy
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from common.optim import LazyAdamW, clip_dense_grad_norm
from text.sentence_encoder import SentenceEncoder
from text.tokenizer import SentencePieceTokenizer, pad_ids


class PairTextDataset(Dataset):
    """(source, target) sentence pairs, source in the teacher's language (English)."""

    def __init__(self, pairs: list[tuple[str, str]]):
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> tuple[str, str]:
        return self.pairs[i]


def pair_collate(tokenizer: SentencePieceTokenizer, max_length: int, lang: str | None) -> Any:
    """A collate function: pairs to padded source and target id batches."""

    def collate(items: list[tuple[str, str]]) -> dict[str, Tensor]:
        src_ids, src_mask = pad_ids(tokenizer.encode([s for s, _ in items], "eng_Latn", max_length))
        tgt_ids, tgt_mask = pad_ids(tokenizer.encode([t for _, t in items], lang, max_length))
        return {"src_ids": src_ids, "src_mask": src_mask, "tgt_ids": tgt_ids, "tgt_mask": tgt_mask}

    return collate


def _rows_from(first: int) -> Any:
    """A gradient hook that zeroes the rows before ``first``."""

    def hook(grad: Tensor) -> Tensor:
        keep = torch.arange(grad.shape[0], device=grad.device) >= first  # [V]
        return grad * keep.to(grad.dtype).unsqueeze(1)

    return hook


class DistillationModule(L.LightningModule):
    """Student initialised from a frozen teacher: MSE(student(src), teacher(src)) + MSE(student(tgt), teacher(src)).

    ``student`` (trained in place) defaults to a copy of the teacher. With ``new_rows_from`` only the student's
    rows for the ids from that one on learn (a new language's own pieces: their token embeddings, and their n-gram
    bag block); every other weight stays the teacher's, bit for bit.
    """

    def __init__(self, teacher: SentenceEncoder, lr: float = 2e-4, weight_decay: float = 0.0,
                 warmup_steps: int = 10, student: SentenceEncoder | None = None, new_rows_from: int | None = None):
        super().__init__()
        self.save_hyperparameters({"lr": lr, "weight_decay": weight_decay, "warmup_steps": warmup_steps,
                                   "new_rows_from": new_rows_from})
        self.student = (student if student is not None else copy.deepcopy(teacher)).train()
        self.teacher = copy.deepcopy(teacher).eval().requires_grad_(False)
        if new_rows_from is not None:
            if weight_decay:
                raise ValueError("new_rows_from needs weight_decay=0: decay would move the frozen rows")
            self.student.requires_grad_(False)
            for weight, first in self.student.rows_from(new_rows_from):  # token embeddings, the bag's new block
                weight.requires_grad_(True).register_hook(_rows_from(first))

    def train(self, mode: bool = True) -> DistillationModule:
        super().train(mode)
        self.teacher.eval()  # the teacher's targets must not carry dropout noise
        return self

    def losses(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """(source term, target term) of the distillation loss, each a mean over batch and embedding width."""
        with torch.no_grad():
            goal = self.teacher(batch["src_ids"], batch["src_mask"])  # [B, E]
        src = self.student(batch["src_ids"], batch["src_mask"])  # [B, E]
        tgt = self.student(batch["tgt_ids"], batch["tgt_mask"])  # [B, E]
        return F.mse_loss(src, goal), F.mse_loss(tgt, goal)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        src_loss, tgt_loss = self.losses(batch)
        bs = batch["src_ids"].shape[0]
        self.log("train/mse_src", src_loss, batch_size=bs)
        self.log("train/mse_tgt", tgt_loss, batch_size=bs, prog_bar=True)
        return src_loss + tgt_loss

    def configure_gradient_clipping(self, optimizer: Any, gradient_clip_val: Any = None,
                                    gradient_clip_algorithm: Any = None) -> None:
        if gradient_clip_val:
            clip_dense_grad_norm(self.student, gradient_clip_val)

    def configure_optimizers(self) -> Any:
        params = [p for p in self.student.parameters() if p.requires_grad]
        # The bag's shared rows have sparse gradients (update=all): row-wise AdaGrad for them, AdamW for the rest.
        sparse = self.student.bag is not None and self.student.bag.rows.weight.requires_grad
        opt = (LazyAdamW if sparse else torch.optim.AdamW)(params, lr=self.hparams["lr"],
                                                          weight_decay=self.hparams["weight_decay"])
        warmup = max(int(self.hparams["warmup_steps"]), 1)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


@torch.no_grad()
def embed(model: SentenceEncoder, tokenizer: SentencePieceTokenizer, texts: list[str], lang: str | None = None,
          batch_size: int = 64, max_length: int = 128) -> Tensor:
    """Unit-length embeddings ``[N, E]`` in eval mode, batched."""
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    try:
        for i in range(0, len(texts), batch_size):
            ids, mask = tokenizer.batch(texts[i : i + batch_size], lang, max_length)
            out.append(model(ids.to(device), mask.to(device)).cpu())
    finally:
        model.train(was)
    return torch.cat(out) if out else torch.empty(0, model.cfg.embed_dim)
