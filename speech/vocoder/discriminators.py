"""Discriminators for adversarial vocoder training: multi-period (HiFi-GAN) and multi-resolution (UnivNet)."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from speech.vocoder.config import DiscriminatorConfig

Scores = tuple[list[Tensor], list[list[Tensor]]]
"""Per sub-discriminator: its score map, and its hidden activations (for feature matching)."""


class PeriodDiscriminator(nn.Module):
    """2-D convolutions over the waveform folded into rows of ``period`` samples (Kong et al., 2020)."""

    def __init__(self, period: int, channels: int):
        super().__init__()
        self.period = period
        widths = [1, channels, 2 * channels, 4 * channels, 4 * channels]
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(a, b, (5, 1), (3 if i < 3 else 1, 1), padding=(2, 0)))
            for i, (a, b) in enumerate(itertools.pairwise(widths)))
        self.out = weight_norm(nn.Conv2d(widths[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, wave: Tensor) -> tuple[Tensor, list[Tensor]]:  # [B, S]
        pad = (-wave.shape[-1]) % self.period
        x = F.pad(wave, (0, pad), mode="reflect") if pad else wave
        x = x.view(x.shape[0], 1, -1, self.period)  # [B, 1, S / p, p]
        feats = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.1)
            feats.append(x)
        return self.out(x).flatten(1), feats


class ResolutionDiscriminator(nn.Module):
    """2-D convolutions over one STFT magnitude (Jang et al., 2021), so the generator is judged in frequency too."""

    window: Tensor

    def __init__(self, n_fft: int, hop: int, channels: int):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        # Strided from the first layer: at full resolution the spectrogram convolutions cost ~10x the generator
        # step on a CPU (measured), which left the GAN run with too few steps to help.
        kernels = [((7, 5), (2, 2)), ((5, 3), (2, 1)), ((5, 3), (2, 1)), ((3, 3), (2, 1))]
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(1 if i == 0 else channels, channels, k, s, padding=(k[0] // 2, k[1] // 2)))
            for i, (k, s) in enumerate(kernels))
        self.out = weight_norm(nn.Conv2d(channels, 1, (3, 3), padding=(1, 1)))

    def forward(self, wave: Tensor) -> tuple[Tensor, list[Tensor]]:  # [B, S]
        with torch.autocast(device_type=wave.device.type, enabled=False):
            spec = torch.stft(wave.float(), self.n_fft, self.hop, self.n_fft, self.window, return_complex=True)
        x = spec.abs().clamp_min(1e-5).log()[:, None]  # [B, 1, F, T]
        feats = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.1)
            feats.append(x)
        return self.out(x).flatten(1), feats


class Discriminators(nn.Module):
    """Every multi-period and multi-resolution sub-discriminator, run on the same waveforms."""

    def __init__(self, cfg: DiscriminatorConfig):
        super().__init__()
        self.cfg = cfg
        subs: list[nn.Module] = [PeriodDiscriminator(p, cfg.period_channels) for p in cfg.periods]
        subs += [ResolutionDiscriminator(n, h, cfg.resolution_channels) for n, h in cfg.resolutions]
        self.subs = nn.ModuleList(subs)

    def forward(self, wave: Tensor) -> Scores:
        scores, feats = [], []
        for sub in self.subs:
            s, f = sub(wave)
            scores.append(s)
            feats.append(f)
        return scores, feats
