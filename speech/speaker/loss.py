"""Additive angular margin softmax (AAM-softmax, ArcFace: Deng et al., 2019, arXiv:1801.07698) over training classes.

Speaker encoders train with it (the classes are the training speakers); a source tracer can reuse it over attack
systems. The class weights are training-only: the exported encoder does not keep them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class AAMSoftmax(nn.Module):
    """Cross-entropy over ``scale * cos(theta)``, with the target class's angle widened by ``margin`` radians.

    Past ``theta + margin > pi`` the cosine would turn back up, so there the target logit continues as the straight
    line ``cos(theta) - margin * sin(margin)`` (ArcFace's rule), which keeps it decreasing in theta.
    """

    def __init__(self, embed_dim: int, num_classes: int, margin: float = 0.2, scale: float = 30.0):
        super().__init__()
        if num_classes < 1 or margin < 0 or scale <= 0:
            raise ValueError(f"need num_classes >= 1, margin >= 0 and scale > 0, got {num_classes}, {margin}, {scale}")
        self.weight = nn.Parameter(torch.empty(num_classes, embed_dim))
        nn.init.xavier_uniform_(self.weight)
        self.margin, self.scale = margin, scale

    def cosine(self, emb: Tensor) -> Tensor:
        """Cosine of each embedding [B, D] with each class centre: [B, N]."""
        return F.normalize(emb.float(), dim=-1) @ F.normalize(self.weight.float(), dim=-1).T

    def logits(self, emb: Tensor, labels: Tensor, margin: float | None = None) -> Tensor:
        """Scaled logits [B, N] with the margin applied to each row's target class (``margin`` overrides the set one,
        for a margin warm-up)."""
        m = self.margin if margin is None else margin
        cos = self.cosine(emb)
        target = cos.gather(1, labels[:, None])  # [B, 1]
        sin = (1 - target.pow(2)).clamp_min(0).sqrt()
        widened = target * math.cos(m) - sin * math.sin(m)  # cos(theta + m)
        widened = torch.where(target > math.cos(math.pi - m), widened, target - m * math.sin(m))
        return self.scale * cos.scatter(1, labels[:, None], widened)

    def forward(self, emb: Tensor, labels: Tensor, margin: float | None = None) -> Tensor:
        """Mean loss over the batch; ``labels`` [B] index the classes."""
        return F.cross_entropy(self.logits(emb, labels, margin), labels)
