"""Layers shared by the families' models."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Dropout(nn.Dropout):
    """``nn.Dropout`` whose CPU mask comes from a quarter of a fast random number per element.

    On the CPU, torch draws dropout's mask one element at a time from its serial generator (``bernoulli_``, ~10 ns
    an element here): in the main job's conformer that was 29% of a training step, most of it in the feed-forward
    blocks' wide hidden layers. Here numpy's PCG64, seeded by one draw from torch's generator (so
    ``torch.manual_seed`` still fixes the masks), gives 64 random bits at a time, four 16-bit uniforms; an element
    is dropped where its uniform falls under ``p`` (to 1/65,536; the kept ones are scaled by the exact inverse of
    the kept share, so the expectation is unchanged). About 7x faster. Same module, arguments and state as
    ``nn.Dropout``; other devices use torch's.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu" or self.p >= 1.0:
            return F.dropout(x, self.p, True, self.inplace)
        drop = round(self.p * 65_536)
        keep = _uniform16(x.shape) >= drop - 32_768
        return _Masked.apply(x, keep, 65_536 / (65_536 - drop))


def _uniform16(shape: torch.Size) -> Tensor:
    """int16 values uniform over [-32768, 32767], of ``shape``: four from each 64-bit output of PCG64."""
    n = shape.numel()
    bits = np.random.PCG64(int(torch.randint(0, 1 << 62, ()))).random_raw(-(-n // 4))
    return torch.from_numpy(bits.view(np.int16)[:n]).view(shape)


class _Masked(torch.autograd.Function):
    """``x * keep * scale``, keeping the boolean mask (not a float one) for the backward pass."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, keep: Tensor, scale: float) -> Tensor:
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return x.mul(keep).mul_(scale)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        (keep,) = ctx.saved_tensors
        return grad.mul(keep).mul_(ctx.scale), None, None
