"""Reconstruction and adversarial losses of vocoder training (all in fp32: STFTs under bf16 lose the quiet bins)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def mel_l1(pred: Tensor, target: Tensor, lens: Tensor | None = None) -> Tensor:
    """Mean absolute difference of two log-mel sequences [B, T, M]; with ``lens`` only each row's first frames."""
    diff = (pred.float() - target.float()).abs().mean(-1)  # [B, T]
    if lens is None:
        return diff.mean()
    mask = torch.arange(diff.shape[1], device=diff.device)[None] < lens[:, None]
    return (diff * mask).sum() / mask.sum().clamp_min(1)


class MultiResolutionSTFTLoss(nn.Module):
    """Spectral convergence plus log-magnitude L1, averaged over several STFT resolutions (Yamamoto et al., 2020).

    One resolution trades time for frequency detail; several keep the generator from fitting one at the other's
    expense.
    """

    def __init__(self, resolutions: tuple[tuple[int, int], ...] = ((256, 64), (512, 128), (1024, 256))):
        super().__init__()
        self.resolutions = tuple(resolutions)
        for n_fft, _ in self.resolutions:
            self.register_buffer(f"window_{n_fft}", torch.hann_window(n_fft), persistent=False)

    def magnitude(self, wave: Tensor, n_fft: int, hop: int) -> Tensor:
        window = getattr(self, f"window_{n_fft}")
        spec = torch.stft(wave.float(), n_fft, hop, n_fft, window, center=True, return_complex=True)
        return spec.abs().clamp_min(1e-7)  # [B, F, T]

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        with torch.autocast(device_type=pred.device.type, enabled=False):
            total = pred.new_zeros((), dtype=torch.float32)
            for n_fft, hop in self.resolutions:
                p, t = self.magnitude(pred, n_fft, hop), self.magnitude(target, n_fft, hop)
                convergence = torch.linalg.norm(t - p) / torch.linalg.norm(t).clamp_min(1e-7)
                total = total + convergence + F.l1_loss(p.log(), t.log())
            return total / len(self.resolutions)


def discriminator_loss(real: list[Tensor], fake: list[Tensor], kind: str) -> Tensor:
    """Real scores pushed up, fake down: hinge (Vocos) or least squares (HiFi-GAN)."""
    total = real[0].new_zeros(())
    for r, f in zip(real, fake):
        if kind == "hinge":
            total = total + F.relu(1 - r).mean() + F.relu(1 + f).mean()
        else:
            total = total + ((1 - r) ** 2).mean() + (f**2).mean()
    return total / len(real)


def generator_loss(fake: list[Tensor], kind: str) -> Tensor:
    """The generator's side of ``discriminator_loss``."""
    total = fake[0].new_zeros(())
    for f in fake:
        total = total + (F.relu(1 - f).mean() if kind == "hinge" else ((1 - f) ** 2).mean())
    return total / len(fake)


def feature_matching(real_feats: list[list[Tensor]], fake_feats: list[list[Tensor]]) -> Tensor:
    """L1 between the discriminators' hidden activations on real and generated audio, per layer, averaged."""
    terms = [F.l1_loss(f, r.detach()) for rs, fs in zip(real_feats, fake_feats) for r, f in zip(rs, fs)]
    return torch.stack(terms).mean()
