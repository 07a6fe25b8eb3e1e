"""Griffin-Lim, the training-free baseline: log-mel -> linear magnitude -> iterative phase recovery."""

from __future__ import annotations

import math

import torch
import torchaudio
from torch import Tensor, nn

from speech.vocoder.mel import MelSpec


def mel_filterbank(spec: MelSpec) -> Tensor:
    """[F, M] the mel filterbank of ``LogMelSpectrogram(spec)`` (slaney bands, slaney normalisation)."""
    return torchaudio.functional.melscale_fbanks(
        spec.n_fft // 2 + 1, spec.f_min, spec.f_max, spec.n_mels, spec.sample_rate, norm="slaney", mel_scale="slaney")


def mel_pinv_magnitude(mel: Tensor, pinv: Tensor, floor: float) -> Tensor:
    """[B, T, M] natural-log mel -> [B, T, F] linear magnitude by the filterbank's pseudo-inverse ``pinv`` [M, F].

    The least-squares (minimum-norm) inversion leaves some bins negative; they are clamped to the mel's floor.
    """
    return (mel.float().exp() @ pinv).clamp_min(floor)


class GriffinLimVocoder(nn.Module):
    """Log-mel frames [B, T, n_mels] -> waveform [B, (T - 1) * hop], like ``Vocoder`` but with nothing to train.

    The mel filterbank is inverted by non-negative least squares (a pseudo-inverse start and a few multiplicative
    updates), then fast Griffin-Lim (Perraudin et al., 2013: momentum) finds a phase for that magnitude.
    """

    fb: Tensor
    """[F, M] mel filterbank."""
    pinv: Tensor
    window: Tensor

    def __init__(self, spec: MelSpec | None = None, n_iter: int = 32, momentum: float = 0.99, nnls_iter: int = 20,
                 rand_init: bool = True):
        super().__init__()
        spec = spec or MelSpec()
        if n_iter < 1 or nnls_iter < 0:
            raise ValueError(f"n_iter must be >= 1 and nnls_iter >= 0, got {n_iter}, {nnls_iter}")
        self.spec, self.n_iter, self.momentum, self.nnls_iter, self.rand_init = (
            spec, n_iter, momentum, nnls_iter, rand_init)
        fb = mel_filterbank(spec)  # [F, M], the same bands as LogMelSpectrogram
        self.register_buffer("fb", fb, persistent=False)
        self.register_buffer("pinv", torch.linalg.pinv(fb), persistent=False)  # [M, F]
        self.register_buffer("window", torch.hann_window(spec.n_fft), persistent=False)

    def linear_magnitude(self, mel: Tensor) -> Tensor:
        """[B, T, M] natural-log mel -> [B, T, F] non-negative linear magnitude whose mel is closest to it."""
        target = mel.float().exp()
        # The pseudo-inverse alone leaves negative bins; Lee-Seung multiplicative updates keep every bin >= 0
        # and lower ||lin @ fb - target|| at each step.
        lin = mel_pinv_magnitude(mel, self.pinv, self.spec.floor)
        num = target @ self.fb.T
        gram = self.fb @ self.fb.T  # [F, F]
        for _ in range(self.nnls_iter):
            lin = lin * num / (lin @ gram).clamp_min(1e-12)
        return lin

    def forward(self, mel: Tensor) -> Tensor:  # [B, T, n_mels] -> [B, (T - 1) * hop]
        if mel.ndim != 3 or mel.shape[-1] != self.spec.n_mels:
            raise ValueError(f"expected log-mel frames [B, T, {self.spec.n_mels}], got {tuple(mel.shape)}")
        if mel.shape[1] < 2:  # one frame is a point in time: no samples
            return mel.new_zeros(mel.shape[0], 0)
        length = (mel.shape[1] - 1) * self.spec.hop
        # Each iteration re-analyses with reflect padding of n_fft / 2, which needs more samples than that:
        # very short inputs get silent frames appended, and the output is cut back.
        short = self.spec.n_fft // (2 * self.spec.hop) + 2 - mel.shape[1]
        if short > 0:
            mel = torch.cat([mel, mel.new_full((mel.shape[0], short, mel.shape[2]), math.log(self.spec.floor))], 1)
        mag = self.linear_magnitude(mel).transpose(1, 2)  # [B, F, T]
        # torchaudio.transforms.GriffinLim fixes the output length at construction; the functional form takes
        # it per call, so the waveform lines up with the frames for any T.
        wave = torchaudio.functional.griffinlim(
            mag, self.window, self.spec.n_fft, self.spec.hop, self.spec.n_fft, power=1.0, n_iter=self.n_iter,
            momentum=self.momentum, length=(mel.shape[1] - 1) * self.spec.hop, rand_init=self.rand_init)
        return wave[:, :length]
