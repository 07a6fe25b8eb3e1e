"""Contrastive losses shared by the families (sentence encoders, FLAME, CLaMP): in-batch negatives, both directions.

Rank-aware in the manner of open_clip's ``ClipLoss``: under DDP every rank gathers the other ranks' embeddings
(keeping gradients for its own) so each anchor sees the global batch as negatives.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn


def gather_with_grad(x: Tensor) -> tuple[Tensor, int]:
    """All ranks' rows concatenated (gradients flow to this rank's rows) and this rank's row offset."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x, 0
    from torch.distributed.nn.functional import all_gather

    parts = all_gather(x)
    return torch.cat(parts), dist.get_rank() * x.shape[0]


def translation_ranking_loss(
    a: Tensor, b: Tensor, scale: float | Tensor = 20.0, margin: float = 0.3, bidirectional: bool = True, offset: int = 0
) -> Tensor:
    """Additive-margin softmax over in-batch negatives (Yang et al., 2019; LaBSE, Feng et al., 2022).

    ``a [B, D]`` are anchors and ``b [N, D]`` candidates (N >= B; row ``offset + i`` of ``b`` is the translation of
    row ``i`` of ``a``). Both are expected L2-normalised, so logits are ``scale * (cos - margin on the positive)``.
    With ``bidirectional`` the loss from ``b``'s side (candidates ranking anchors) is averaged in.
    """
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected [B, D] and [N, D] embeddings, got {tuple(a.shape)} and {tuple(b.shape)}")
    sim = a @ b.T  # [B, N]
    target = torch.arange(a.shape[0], device=a.device) + offset  # [B]
    positive = F.one_hot(target, sim.shape[1]).to(sim.dtype)  # [B, N]
    logits = scale * (sim - margin * positive)
    loss = F.cross_entropy(logits, target)
    if not bidirectional:
        return loss
    # b -> a: each candidate of this rank ranks this rank's anchors.
    local = logits[:, offset : offset + a.shape[0]].T  # [B, B]
    return 0.5 * (loss + F.cross_entropy(local, torch.arange(a.shape[0], device=a.device)))


class ContrastiveLoss(nn.Module):
    """Bidirectional translation-ranking loss with additive margin, over the global batch under DDP."""

    def __init__(self, scale: float = 20.0, margin: float = 0.3, bidirectional: bool = True, gather: bool = True):
        super().__init__()
        self.scale = scale
        self.margin = margin
        self.bidirectional = bidirectional
        self.gather = gather

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        """Loss of paired embeddings ``a [B, D]`` and ``b [B, D]`` (row i of each is one pair)."""
        if a.shape != b.shape:
            raise ValueError(f"paired embeddings must have equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
        if not self.gather:
            return translation_ranking_loss(a, b, self.scale, self.margin, self.bidirectional)
        all_b, offset = gather_with_grad(b)
        loss = translation_ranking_loss(a, all_b, self.scale, self.margin, bidirectional=False, offset=offset)
        if not self.bidirectional:
            return loss
        all_a, _ = gather_with_grad(a)
        reverse = translation_ranking_loss(b, all_a, self.scale, self.margin, bidirectional=False, offset=offset)
        return 0.5 * (loss + reverse)
