"""The neural vocoder: log-mel frames [B, T, n_mels] -> waveform [B, (T - 1) * hop]."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from speech.vocoder.config import VocosConfig
from speech.vocoder.griffin_lim import mel_filterbank, mel_pinv_magnitude
from speech.vocoder.mel import MelSpec


class ConvNeXtBlock(nn.Module):
    """Depthwise conv, LayerNorm, pointwise MLP and a scaled residual (Liu et al., 2022), over time only."""

    def __init__(self, dim: int, intermediate_dim: int, kernel_size: int, layer_scale: float):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pw1 = nn.Linear(dim, intermediate_dim)
        self.pw2 = nn.Linear(intermediate_dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: Tensor) -> Tensor:  # [B, D, T]
        h = self.dwconv(x).transpose(1, 2)  # [B, T, D]
        h = self.pw2(F.gelu(self.pw1(self.norm(h))))
        return x + (self.gamma * h).transpose(1, 2)


class ISTFTHead(nn.Module):
    """Features -> (log-magnitude, phase angle) per STFT bin -> waveform by inverse STFT.

    The phase is an unconstrained angle turned into cos/sin, so the head never has to wrap it; the magnitude is
    exp of a clipped log-magnitude. With the analysis's window, FFT size and hop the output lines up sample for
    sample with the waveform the mel frames came from. Given a log-magnitude prior the projection predicts a
    correction to it; with ``centred_phase`` its angle is added to pi * (bin mod 2), the STFT phase of a frame
    whose energy sits at the window's centre (torch.stft measures phase from the frame's start).
    """

    window: Tensor
    phase_offset: Tensor
    """[F, 1] the angle the projection's output is added to."""

    def __init__(self, dim: int, n_fft: int, hop: int, max_log_mag: float, centred_phase: bool = False):
        super().__init__()
        self.n_fft, self.hop, self.max_log_mag = n_fft, hop, max_log_mag
        self.proj = nn.Linear(dim, n_fft + 2)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        bins = torch.arange(n_fft // 2 + 1)
        offset = math.pi * (bins % 2).float() if centred_phase else torch.zeros(len(bins))
        self.register_buffer("phase_offset", offset[:, None], persistent=False)

    def spectrum(self, x: Tensor, log_mag_prior: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """[B, T, D] features (+ [B, F, T] log-magnitude prior) -> log-magnitude and angle, [B, F, T] each."""
        log_mag, angle = self.proj(x).float().transpose(1, 2).chunk(2, dim=1)  # [B, F, T] each
        if log_mag_prior is not None:
            log_mag = log_mag + log_mag_prior
        return log_mag, angle + self.phase_offset

    def forward(self, x: Tensor, log_mag_prior: Tensor | None = None) -> Tensor:  # [B, T, D] -> [B, (T - 1) * hop]
        return self.synthesize(*self.spectrum(x, log_mag_prior))

    def synthesize(self, log_mag: Tensor, angle: Tensor) -> Tensor:
        """Inverse STFT of magnitude exp(log_mag) (clipped) and phase ``angle``, both [B, F, T]."""
        with torch.autocast(device_type=log_mag.device.type, enabled=False):
            mag = log_mag.float().clamp(max=self.max_log_mag).exp()
            spec = torch.complex(mag * torch.cos(angle.float()), mag * torch.sin(angle.float()))
            length = (spec.shape[-1] - 1) * self.hop
            if length == 0:  # one frame is a point in time: no samples (torch.istft refuses it)
                return mag.new_zeros(mag.shape[0], 0)
            return torch.istft(spec, self.n_fft, self.hop, self.n_fft, self.window, center=True, length=length)


class MelPseudoInverse(nn.Module):
    """Log-mel [B, T, M] -> [B, F, T] log linear magnitude by the filterbank's pseudo-inverse (no parameters).

    The least-squares inversion Griffin-Lim starts from (``GriffinLimVocoder(nnls_iter=0).linear_magnitude``): on
    speech its mel is within ~0.05 (L1, natural log) of the input, against ~0.01 after the baseline's NNLS updates,
    for one [M, F] matrix product per frame instead of 20 [F, F] ones.
    """

    pinv: Tensor

    def __init__(self, spec: MelSpec):
        super().__init__()
        self.floor = spec.floor
        self.register_buffer("pinv", torch.linalg.pinv(mel_filterbank(spec)), persistent=False)  # [M, F]

    def forward(self, mel: Tensor) -> Tensor:
        with torch.autocast(device_type=mel.device.type, enabled=False):
            return mel_pinv_magnitude(mel, self.pinv, self.floor).log().transpose(1, 2)


class Vocoder(nn.Module):
    """Vocos (Siuzdak, 2023, arXiv:2306.00814): a ConvNeXt stack at frame rate and an iSTFT head, no upsampling."""

    model_type = "vocoder_vocos"

    def __init__(self, cfg: VocosConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Conv1d(cfg.mel.n_mels, cfg.dim, cfg.kernel_size, padding=cfg.kernel_size // 2)
        self.norm_in = nn.LayerNorm(cfg.dim, eps=1e-6)
        scale = cfg.layer_scale_init if cfg.layer_scale_init is not None else 1.0 / cfg.num_layers
        self.blocks = nn.ModuleList(ConvNeXtBlock(cfg.dim, cfg.intermediate_dim, cfg.kernel_size, scale)
                                    for _ in range(cfg.num_layers))
        self.norm_out = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.head = ISTFTHead(cfg.dim, cfg.mel.n_fft, cfg.mel.hop, cfg.max_log_mag,
                              centred_phase=cfg.phase_prior == "frame_centre")
        self.magnitude_prior = MelPseudoInverse(cfg.mel) if cfg.magnitude_prior == "mel_pinv" else None
        self.apply(self._init)
        # With a prior the projection predicts a residual: zero at first, so an untrained vocoder's spectrum is
        # exactly the prior's and training starts from Griffin-Lim's magnitude instead of from noise.
        with torch.no_grad():
            if cfg.magnitude_prior != "none":
                self.head.proj.weight[: cfg.n_freqs].zero_()
            if cfg.phase_prior != "none":
                self.head.proj.weight[cfg.n_freqs:].zero_()

    @staticmethod
    def _init(m: nn.Module) -> None:
        # Vocos' initialisation: small weights keep the first log-magnitudes near 0, away from the clip.
        if isinstance(m, nn.Conv1d | nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def spectrum(self, mel: Tensor) -> tuple[Tensor, Tensor]:
        """[B, T, n_mels] log-mel -> the STFT the head inverts: log-magnitude and angle, [B, F, T] each."""
        if mel.ndim != 3 or mel.shape[-1] != self.cfg.mel.n_mels:
            raise ValueError(f"expected log-mel frames [B, T, {self.cfg.mel.n_mels}], got {tuple(mel.shape)}")
        x = self.norm_in(self.embed(mel.transpose(1, 2)).transpose(1, 2)).transpose(1, 2)  # [B, D, T]
        for block in self.blocks:
            x = block(x)
        prior = self.magnitude_prior(mel) if self.magnitude_prior is not None else None
        return self.head.spectrum(self.norm_out(x.transpose(1, 2)), prior)

    def forward(self, mel: Tensor) -> Tensor:  # [B, T, n_mels] -> [B, (T - 1) * hop]
        return self.head.synthesize(*self.spectrum(mel))
