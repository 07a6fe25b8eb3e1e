"""ECAPA-TDNN speaker encoder (Desplanques et al., 2020, arXiv:2005.07143): waveforms in, speaker embeddings out.

Padded frames never reach a real frame: every block zeroes them again, so a conv sees the same zeros past the end as
it would on the utterance alone, and the pooling's statistics and softmax leave them out. In eval mode a padded
batch therefore embeds each utterance as it would alone.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio
from torch import Tensor, nn

from speech.features import LogMel
from speech.speaker.config import EcapaConfig

MODEL_TYPE = "speaker_ecapa"
"""The hub's name for a speaker encoder directory."""


class ConvBlock(nn.Module):
    """Conv1d, ReLU, BatchNorm (the paper's order), padded frames zeroed."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 1, dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2)
        self.norm = nn.BatchNorm1d(c_out)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return self.norm(F.relu(self.conv(x))) * mask  # [B, C, T]


class Res2Conv(nn.Module):
    """Res2Net's hierarchical convs: group i sees its own channels plus group i-1's output (growing receptive field)."""

    def __init__(self, channels: int, scale: int, kernel: int, dilation: int):
        super().__init__()
        self.scale = scale
        width = channels // scale
        self.convs = nn.ModuleList(ConvBlock(width, width, kernel, dilation) for _ in range(scale - 1))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        groups = x.chunk(self.scale, dim=1)
        out, y = [groups[0]], groups[0]  # the first group passes through unchanged
        for i, conv in enumerate(self.convs):
            y = conv(groups[i + 1] if i == 0 else groups[i + 1] + y, mask)
            out.append(y)
        return torch.cat(out, dim=1)


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean over time of the real frames: [B, C, T] -> [B, C, 1]."""
    return (x * mask).sum(-1, keepdim=True) / mask.sum(-1, keepdim=True).clamp_min(1)


class SqueezeExcite(nn.Module):
    """Channel gates from the utterance's mean (over real frames only)."""

    def __init__(self, channels: int, bottleneck: int):
        super().__init__()
        self.down, self.up = nn.Conv1d(channels, bottleneck, 1), nn.Conv1d(bottleneck, channels, 1)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        gate = torch.sigmoid(self.up(F.relu(self.down(masked_mean(x, mask)))))  # [B, C, 1]
        return x * gate


class SERes2Block(nn.Module):
    """1x1 conv, dilated Res2Net convs, 1x1 conv, squeeze-excitation, plus the input."""

    def __init__(self, cfg: EcapaConfig, dilation: int):
        super().__init__()
        c = cfg.channels
        self.pre = ConvBlock(c, c)
        self.res2 = Res2Conv(c, cfg.scale, cfg.block_kernel, dilation)
        self.post = ConvBlock(c, c)
        self.se = SqueezeExcite(c, cfg.se_channels)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return x + self.se(self.post(self.res2(self.pre(x, mask), mask), mask), mask)


class AttentiveStatsPool(nn.Module):
    """Attention-weighted mean and standard deviation over time, per channel: [B, C, T] -> [B, 2C].

    With ``global_context`` the attention also sees the utterance's (unweighted) mean and deviation. Frames where
    ``mask`` is 0 get no weight, whatever they hold.
    """

    def __init__(self, channels: int, attention_channels: int, global_context: bool = True):
        super().__init__()
        self.global_context = global_context
        self.attention = nn.Sequential(
            nn.Conv1d(channels * (3 if global_context else 1), attention_channels, 1), nn.ReLU(),
            nn.BatchNorm1d(attention_channels), nn.Tanh(), nn.Conv1d(attention_channels, channels, 1))

    @staticmethod
    def _stats(x: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
        mean = (w * x).sum(-1, keepdim=True)
        var = (w * (x - mean).pow(2)).sum(-1, keepdim=True)
        return mean, var.clamp_min(1e-6).sqrt()  # [B, C, 1] each

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        keep = mask.bool()  # [B, 1, T]
        x = x.masked_fill(~keep, 0.0)  # what padded frames hold must not reach the statistics (0 * inf is nan)
        inp = x
        if self.global_context:
            uniform = keep.to(x.dtype) / keep.sum(-1, keepdim=True).clamp_min(1)
            mean, std = self._stats(x, uniform)
            inp = torch.cat([x, mean.expand_as(x), std.expand_as(x)], dim=1)
        scores = self.attention(inp).masked_fill(~keep, float("-inf"))
        w = torch.softmax(scores, dim=-1)  # [B, C, T]: per-channel weights over the real frames
        mean, std = self._stats(x, w)
        return torch.cat([mean, std], dim=1).squeeze(-1)


class EcapaTdnn(nn.Module):
    """Log-mel frames [B, T, F] and their lengths [B] to speaker embeddings [B, D] (not normalised)."""

    def __init__(self, cfg: EcapaConfig):
        super().__init__()
        self.cfg = cfg
        c = cfg.channels
        self.stem = ConvBlock(cfg.n_mels, c, cfg.kernel_size)
        self.blocks = nn.ModuleList(SERes2Block(cfg, d) for d in cfg.dilations)
        # Multi-layer feature aggregation: every block's output, not only the last one, feeds the pooling.
        self.mfa = ConvBlock(c * len(cfg.dilations), cfg.mfa_channels)
        self.pool = AttentiveStatsPool(cfg.mfa_channels, cfg.attention_channels, cfg.global_context)
        self.pool_norm = nn.BatchNorm1d(2 * cfg.mfa_channels)
        self.fc = nn.Linear(2 * cfg.mfa_channels, cfg.embed_dim)
        self.out_norm = nn.BatchNorm1d(cfg.embed_dim)

    def forward(self, feats: Tensor, lens: Tensor) -> Tensor:
        x = feats.transpose(1, 2)  # [B, F, T]
        mask = (torch.arange(x.shape[-1], device=x.device)[None] < lens[:, None])[:, None].to(x.dtype)  # [B, 1, T]
        h = self.stem(x * mask, mask)
        outs = []
        for block in self.blocks:
            h = block(h, mask)
            outs.append(h)
        h = self.mfa(torch.cat(outs, dim=1), mask)  # [B, mfa, T]
        return self.out_norm(self.fc(self.pool_norm(self.pool(h, mask))))  # [B, D]


Waves = Tensor | np.ndarray | Sequence[Tensor | np.ndarray]


class SpeakerEncoder(nn.Module):
    """Waveforms to speaker embeddings: the ASR front-end's per-utterance normalised log-mel, then ECAPA-TDNN.

    speech.features.LogMel rather than the TTS mel (speech.vocoder.mel): ECAPA is defined over 25 ms / 10 ms
    frames, LogMel takes the lengths of a padded batch, and its per-utterance normalisation makes the embedding
    deaf to loudness, which generated and recorded speech do not share.
    """

    model_type = MODEL_TYPE

    def __init__(self, cfg: EcapaConfig):
        super().__init__()
        self.cfg = cfg
        self.features = LogMel(cfg.sample_rate, cfg.n_mels)
        self.ecapa = EcapaTdnn(cfg)

    def forward(self, wave: Tensor, wave_lens: Tensor) -> Tensor:
        """Waveforms [B, S] at ``cfg.sample_rate`` and their lengths [B] to embeddings [B, D] (not normalised)."""
        feats, lens = self.features(wave, wave_lens)
        return self.ecapa(feats, lens)

    def batch(self, waves: Waves, sample_rate: int) -> tuple[Tensor, Tensor]:
        """A padded batch [B, S] at the model's rate and its lengths, from a [B, S] / [S] array or a list of waves."""
        if isinstance(waves, (Tensor, np.ndarray)):
            t = torch.as_tensor(waves, dtype=torch.float32)
            if t.ndim not in (1, 2):
                raise ValueError(f"expected a wave [S] or a batch [B, S], got shape {tuple(t.shape)}")
            items = list(t[None] if t.ndim == 1 else t)
        else:
            items = [torch.as_tensor(w, dtype=torch.float32) for w in waves]
        if not items:
            raise ValueError("no waves to embed")
        for i, w in enumerate(items):
            if w.ndim != 1 or w.numel() == 0:
                raise ValueError(f"wave {i}: expected a non-empty 1-D wave, got shape {tuple(w.shape)}")
            if not torch.isfinite(w).all():
                raise ValueError(f"wave {i}: holds NaN or infinite samples")
        if sample_rate != self.cfg.sample_rate:
            items = [torchaudio.functional.resample(w, sample_rate, self.cfg.sample_rate) for w in items]
        lens = torch.tensor([len(w) for w in items])
        wave = torch.zeros(len(items), int(lens.max()))
        for i, w in enumerate(items):
            wave[i, : len(w)] = w
        return wave, lens

    @torch.no_grad()
    def embed(self, waves: Waves, sample_rate: int = 16_000) -> Tensor:
        """L2-normalised embeddings [B, D] of a batch [B, S], one wave [S] or a list of 1-D waves (any lengths)."""
        wave, lens = self.batch(waves, sample_rate)
        device = next(self.parameters()).device
        was_training = self.training
        self.eval()
        try:
            return F.normalize(self(wave.to(device), lens.to(device)).float(), dim=-1)
        finally:
            self.train(was_training)

    @classmethod
    def from_pretrained(cls, model_dir: str | os.PathLike[str], device: str | torch.device = "cpu") -> SpeakerEncoder:
        """A directory written by ``speech.speaker.hub.save_pretrained`` (as ``experiment=speaker_encoder`` exports)."""
        from speech.speaker.hub import load_encoder

        return load_encoder(model_dir, device)

    def extra_repr(self) -> str:
        return f"embed_dim={self.cfg.embed_dim}"

