"""The flow-matching acoustic model: a transformer over log-mel frames (Voicebox, Le et al., 2023).

Public API::

    model = FlowTTS(cfg)                          # cfg: speech.tts.config.FlowTTSConfig
    v = model(x_t, t, cond_mel, cond_mask, units, frame_mask=None, drop_cond=None)   # [B, T, n_mels]
    units = expand_units(ids, durations, frames=None)   # [B, U] unit ids x durations -> [B, T] per-frame ids
    x = model.normalize(log_mel); log_mel = model.denormalize(x)   # the global mel statistics of cfg

Every mel argument of ``forward`` is normalised (``model.normalize``). ``cond_mask`` is True where ``cond_mel`` is
known audio (the prompt, the frames around an edit) and False where frames are generated; ``frame_mask`` is True on
real frames (False on batch padding); ``drop_cond`` (one bool per sample) removes audio context and units, the
unconditional pass of classifier-free guidance.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from common.layers import Dropout
from speech.tts.config import FlowTTSConfig


def expand_units(ids: Tensor, durations: Tensor, frames: int | None = None) -> Tensor:
    """Frame-aligned units: each id of ``ids`` [B, U] repeated ``durations`` [B, U] times -> [B, T], pad (0) after.

    ``frames`` fixes T (default: the longest total duration); frames past an utterance's total are 0.
    """
    durations = durations.long().clamp_min(0)
    ends = durations.cumsum(-1)  # [B, U]: first frame after each unit
    total = int(ends[:, -1].max()) if ends.numel() else 0
    frames = total if frames is None else frames
    pos = torch.arange(frames, device=ids.device).expand(ids.shape[0], frames).contiguous()  # [B, T]
    idx = torch.searchsorted(ends, pos, right=True)  # the unit whose span holds each frame
    valid = idx < ids.shape[1]
    out = ids.gather(1, idx.clamp_max(max(ids.shape[1] - 1, 0))) if ids.shape[1] else torch.zeros_like(pos)
    return out.masked_fill(~valid, 0)


def time_embedding(t: Tensor, dim: int, scale: float = 1000.0) -> Tensor:
    """Sinusoidal features of the flow step t in [0, 1] ([B] -> [B, dim]); ``scale`` spreads t over the bands."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = scale * t.float()[:, None] * freqs[None]
    return torch.cat([args.sin(), args.cos()], dim=-1)


def rotary_angles(n: int, head_dim: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Cosines and sines [L, Dh/2] of rotary position embedding (Su et al., 2021) for positions 0..n-1."""
    inv_freq = 1.0 / 10_000 ** (torch.arange(0, head_dim, 2, device=device).float() / head_dim)
    angles = torch.arange(n, device=device, dtype=torch.float32)[:, None] * inv_freq[None]
    return angles.cos(), angles.sin()


def rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate pairs of channels of queries or keys [B, H, L, Dh] by their position's angles."""
    a, b = x[..., 0::2], x[..., 1::2]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2)


class Block(nn.Module):
    """Pre-norm transformer block: rotary self-attention with a key padding mask, then a GELU feed-forward."""

    def __init__(self, cfg: FlowTTSConfig):
        super().__init__()
        self.heads = cfg.heads
        self.norm1, self.norm2 = nn.LayerNorm(cfg.dim), nn.LayerNorm(cfg.dim)
        self.qkv = nn.Linear(cfg.dim, 3 * cfg.dim)
        self.out = nn.Linear(cfg.dim, cfg.dim)
        self.ff = nn.Sequential(nn.Linear(cfg.dim, cfg.ff_mult * cfg.dim), nn.GELU(), Dropout(cfg.dropout),
                                nn.Linear(cfg.ff_mult * cfg.dim, cfg.dim))
        self.drop = Dropout(cfg.dropout)

    def forward(self, h: Tensor, attn_mask: Tensor, rot: tuple[Tensor, Tensor]) -> Tensor:
        b, n, d = h.shape
        q, k, v = self.qkv(self.norm1(h)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k = rotate(q, *rot), rotate(k, *rot)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # [B, H, L, Dh]
        h = h + self.drop(self.out(a.transpose(1, 2).reshape(b, n, d)))
        return h + self.drop(self.ff(self.norm2(h)))


class FlowTTS(nn.Module):
    """Predicts the flow-matching vector field of masked mel frames from noisy frames, audio context and units.

    Voicebox's audio model: the noisy frames, the masked audio context (plus its mask as one channel) and the
    frame-aligned unit embeddings are concatenated and projected to ``dim``; a convolutional position embedding
    and rotary attention give positions; the flow step t is a token prepended to the frames; the first half of the
    blocks feeds U-Net skips into the second half.
    """

    def __init__(self, cfg: FlowTTSConfig):
        super().__init__()
        self.cfg = cfg
        self.units = nn.Embedding(cfg.vocab_size, cfg.unit_dim, padding_idx=0)
        self.in_proj = nn.Linear(2 * cfg.n_mels + 1 + cfg.unit_dim, cfg.dim)
        self.conv_pos = nn.Sequential(
            nn.Conv1d(cfg.dim, cfg.dim, cfg.conv_pos_kernel, padding=cfg.conv_pos_kernel // 2,
                      groups=cfg.conv_pos_groups),
            nn.GELU(),
        )
        self.time = nn.Sequential(nn.Linear(cfg.dim, cfg.dim), nn.SiLU(), nn.Linear(cfg.dim, cfg.dim))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.skips = nn.ModuleList(nn.Linear(2 * cfg.dim, cfg.dim) for _ in range(cfg.depth // 2))
        self.norm = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, cfg.n_mels)

    def normalize(self, mel: Tensor) -> Tensor:
        """Log-mel frames to the ~unit-variance space the flow works in."""
        return (mel - self.cfg.mel_mean) / self.cfg.mel_std

    def denormalize(self, x: Tensor) -> Tensor:
        """The inverse of ``normalize``: back to natural-log mel magnitudes."""
        return x * self.cfg.mel_std + self.cfg.mel_mean

    def forward(
        self, x_t: Tensor, t: Tensor, cond_mel: Tensor, cond_mask: Tensor, units: Tensor,
        frame_mask: Tensor | None = None, drop_cond: Tensor | None = None,
    ) -> Tensor:
        """Vector field [B, T, n_mels] at the noisy frames ``x_t`` and flow step ``t`` ([B] or a scalar).

        Args:
            cond_mel: normalised audio context [B, T, n_mels]; only frames where ``cond_mask`` is True are seen.
            cond_mask: [B, T] bool, True where the frame is given context, False where it is generated.
            units: [B, T] frame-aligned unit ids (``expand_units``); 0 pads.
            frame_mask: [B, T] bool, True on real frames (None: all).
            drop_cond: [B] bool, True drops audio context and units for that sample (None: none dropped).
        """
        b, n, _ = x_t.shape
        frame_mask = torch.ones(b, n, dtype=torch.bool, device=x_t.device) if frame_mask is None else frame_mask
        keep = cond_mask & frame_mask
        if drop_cond is not None:
            keep = keep & ~drop_cond[:, None]
            units = units.masked_fill(drop_cond[:, None], 0)
        ctx = cond_mel * keep[..., None]
        emb = self.units(units.masked_fill(~frame_mask, 0))  # [B, T, unit_dim]
        h = self.in_proj(torch.cat([x_t, ctx, keep[..., None].to(x_t.dtype), emb], dim=-1))  # [B, T, D]
        h = h * frame_mask[..., None]
        h = h + self.conv_pos(h.transpose(1, 2)).transpose(1, 2) * frame_mask[..., None]

        t = t.expand(b) if t.dim() == 0 else t
        tok = self.time(time_embedding(t, self.cfg.dim).to(h.dtype))[:, None]  # [B, 1, D]
        h = torch.cat([tok, h], dim=1)  # [B, 1+T, D]
        valid = F.pad(frame_mask, (1, 0), value=True)
        attn_mask = valid[:, None, None, :]  # [B, 1, 1, 1+T]: no query attends to padding
        rot = rotary_angles(n + 1, self.cfg.dim // self.cfg.heads, h.device)

        half = len(self.blocks) // 2
        skips = []
        for i, block in enumerate(self.blocks):
            if i < half:
                skips.append(h)
            else:
                h = self.skips[i - half](torch.cat([h, skips.pop()], dim=-1))
            h = block(h, attn_mask, rot)
        return self.head(self.norm(h[:, 1:])) * frame_mask[..., None]
