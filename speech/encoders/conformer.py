"""Conformer encoder (Gulati et al., 2020) with rotary position embeddings."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from common.layers import Dropout


@dataclass
class ConformerConfig:
    """Architecture of a conformer encoder over log-mel features."""

    n_mels: int = 80
    """Log-mel channels of the input."""
    d_model: int = 144
    """Width of every block."""
    num_layers: int = 6
    """Number of conformer blocks."""
    num_heads: int = 4
    """Attention heads; ``d_model`` must divide evenly."""
    ff_mult: int = 4
    """Feed-forward hidden size as a multiple of ``d_model``."""
    conv_kernel: int = 15
    """Depthwise convolution kernel (frames after subsampling)."""
    subsampling: int = 4
    """Time reduction of the front-end: 4 (two stride-2 convs) or 8 (three)."""
    dropout: float = 0.1
    """Dropout inside blocks."""
    upsample: int = 1
    """Output frames per subsampled frame. Character CTC needs a frame per character and one between repeats; at
    4x subsampling (25 frames a second) fast speech runs out of them. Above 1, a linear map splits each frame into
    that many, starting as copies (the same transcripts as without it), for about 1% more compute."""


def _rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class RotaryAttention(nn.Module):
    """Multi-head self-attention with rotary positions and a key padding mask."""

    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # [B, H, T, Dh]
        dh = d // self.heads
        inv = 1.0 / (10_000 ** (torch.arange(0, dh // 2, device=x.device, dtype=torch.float32) / (dh // 2)))
        ang = torch.arange(t, device=x.device, dtype=torch.float32)[:, None] * inv[None]  # [T, Dh/2]
        cos, sin = ang.cos().to(q.dtype), ang.sin().to(q.dtype)
        q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask[:, None, None, :], dropout_p=self.dropout if self.training else 0.0
        )
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class FeedForward(nn.Sequential):
    def __init__(self, d: int, mult: int, dropout: float):
        super().__init__(
            nn.LayerNorm(d), nn.Linear(d, d * mult), nn.SiLU(), Dropout(dropout),
            nn.Linear(d * mult, d), Dropout(dropout),
        )


class ConvModule(nn.Module):
    """Pointwise-GLU, depthwise conv, norm, SiLU, pointwise; padding frames are zeroed first."""

    def __init__(self, d: int, kernel: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.pw1 = nn.Conv1d(d, 2 * d, 1)
        self.dw = nn.Conv1d(d, d, kernel, padding=kernel // 2, groups=d)
        self.dw_norm = nn.LayerNorm(d)
        self.pw2 = nn.Conv1d(d, d, 1)
        self.drop = Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        y = F.glu(self.pw1(self.norm(x).transpose(1, 2)), dim=1)  # [B, D, T]
        # Padding must be zero where the depthwise conv reads it, i.e. after pw1's bias.
        y = self.dw(y.masked_fill(~mask[:, None, :], 0.0)).transpose(1, 2)
        y = F.silu(self.dw_norm(y)).transpose(1, 2)
        return self.drop(self.pw2(y).transpose(1, 2))


class ConformerBlock(nn.Module):
    def __init__(self, cfg: ConformerConfig):
        super().__init__()
        d = cfg.d_model
        self.ff1 = FeedForward(d, cfg.ff_mult, cfg.dropout)
        self.attn_norm = nn.LayerNorm(d)
        self.attn = RotaryAttention(d, cfg.num_heads, cfg.dropout)
        self.attn_drop = Dropout(cfg.dropout)
        self.conv = ConvModule(d, cfg.conv_kernel, cfg.dropout)
        self.ff2 = FeedForward(d, cfg.ff_mult, cfg.dropout)
        self.norm = nn.LayerNorm(d)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = x + 0.5 * self.ff1(x)
        x = x + self.attn_drop(self.attn(self.attn_norm(x), mask))
        x = x + self.conv(x, mask)
        x = x + 0.5 * self.ff2(x)
        return self.norm(x)


class ConvSubsampling(nn.Module):
    """Stride-2 1-D convolutions over time: cheap on CPU, unlike 2-D subsampling."""

    def __init__(self, n_mels: int, d: int, factor: int):
        super().__init__()
        if factor not in (2, 4, 8):
            raise ValueError(f"subsampling must be 2, 4 or 8, got {factor}")
        n = {2: 1, 4: 2, 8: 3}[factor]
        chans = [n_mels] + [2 * d] * (n - 1) + [d]
        self.convs = nn.ModuleList(nn.Conv1d(chans[i], chans[i + 1], 3, stride=2, padding=1) for i in range(n))

    def forward(self, x: Tensor, lens: Tensor) -> tuple[Tensor, Tensor]:
        x = x.transpose(1, 2)  # [B, F, T]
        for conv in self.convs:
            lens = (lens - 1) // 2 + 1
            x = F.silu(conv(x))
            # Zero the padding so the next stride-2 conv sees the same input as an unpadded utterance.
            x = x * (torch.arange(x.shape[-1], device=x.device)[None] < lens[:, None])[:, None, :].to(x.dtype)
        return x.transpose(1, 2), lens


class ConformerEncoder(nn.Module):
    """Features [B, T, F] to hidden states [B, T/s, D] and their lengths."""

    def __init__(self, cfg: ConformerConfig):
        super().__init__()
        self.cfg = cfg
        self.subsample = ConvSubsampling(cfg.n_mels, cfg.d_model, cfg.subsampling)
        self.proj_drop = Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(ConformerBlock(cfg) for _ in range(cfg.num_layers))
        if cfg.upsample < 1:
            raise ValueError(f"upsample must be at least 1, got {cfg.upsample}")
        self.upsample: nn.Linear | None = None
        if cfg.upsample > 1:
            self.upsample = nn.Linear(cfg.d_model, cfg.upsample * cfg.d_model)
            with torch.no_grad():
                self.upsample.weight.copy_(torch.eye(cfg.d_model).repeat(cfg.upsample, 1))
                self.upsample.bias.zero_()
        self.upsampling = True
        """False leaves the frames unsplit in training (a trainer's schedule sets it; CTC leaves its blank-only phase
        sooner on fewer frames); outside training they are always split."""

    def forward(self, feats: Tensor, lens: Tensor) -> tuple[Tensor, Tensor]:
        x, lens = self.subsample(feats, lens)
        mask = torch.arange(x.shape[1], device=x.device)[None] < lens[:, None]  # [B, T] True = real
        x = self.proj_drop(x)
        for block in self.blocks:
            x = block(x, mask)
        if self.upsample is not None and (self.upsampling or not self.training):
            x = self.upsample(x).unflatten(-1, (self.cfg.upsample, -1)).flatten(1, 2)  # [B, T*k, D]
            lens = lens * self.cfg.upsample
        return x, lens
