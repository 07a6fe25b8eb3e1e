"""Front-ends: waveforms [B, S] and lengths [B] to features [B, T, F] and frame counts [B].

LFCC and MFCC come from torchaudio; the constant-Q transform is computed here (torchaudio has none) by the
Brown-Puckette spectral-kernel method; the SSL front-end mixes every layer of a wav2vec2 encoder with learned weights.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
import torchaudio
from torch import Tensor, nn

from speech.encoders.wav2vec2 import Wav2Vec2Config, Wav2Vec2Encoder, lengths_mask
from speech.source_trace.config import FrontendConfig

SAMPLE_RATE = 16_000


def normalize_frames(feats: Tensor, lens: Tensor) -> Tensor:
    """Per-utterance, per-feature mean and variance normalisation over the real frames; padding stays 0."""
    m = lengths_mask(lens, feats.shape[1])[..., None].to(feats.dtype)  # [B, T, 1]
    n = lens.clamp_min(1)[:, None, None].to(feats.dtype)
    mean = (feats * m).sum(1, keepdim=True) / n
    var = ((feats - mean).pow(2) * m).sum(1, keepdim=True) / n
    return (feats - mean) / (var + 1e-5).sqrt() * m


def zero_tail(wave: Tensor, wave_lens: Tensor, n_fft: int) -> Tensor:
    """The waves with zeros after each one's end and ``n_fft // 2`` more at the right of the batch.

    A centred STFT frame near a clip's end then reads the same zeros whether the clip is alone (where ``center``
    would reflect its last samples) or padded in a batch; the last ``n_fft // 2 // hop`` frames are cut again.
    """
    wave = wave.float() * lengths_mask(wave_lens, wave.shape[1]).to(torch.float32)
    return F.pad(wave, (0, n_fft // 2))


def hold_last(x: Tensor, lens: Tensor) -> Tensor:
    """[B, C, T] frames with each clip's last real frame repeated over its padding: the replicate padding that
    ``compute_deltas`` gives a clip alone, so the deltas near its end do not depend on the batch."""
    idx = torch.minimum(torch.arange(x.shape[-1], device=x.device)[None], (lens - 1).clamp_min(0)[:, None])
    return x.gather(-1, idx[:, None].expand(-1, x.shape[1], -1))


class Cepstral(nn.Module):
    """LFCC (linear filters) or MFCC (mel filters), with optional deltas and delta-deltas."""

    def __init__(self, cfg: FrontendConfig):
        super().__init__()
        self.cfg = cfg
        self.hop = int(SAMPLE_RATE * cfg.hop_ms / 1000)
        spec = {"n_fft": cfg.n_fft, "win_length": int(SAMPLE_RATE * cfg.win_ms / 1000), "hop_length": self.hop,
                "center": True}
        self.transform: nn.Module
        if cfg.kind == "lfcc":
            self.transform = torchaudio.transforms.LFCC(SAMPLE_RATE, n_filter=cfg.n_filters, n_lfcc=cfg.n_coeffs,
                                                        log_lf=True, speckwargs=spec)
        else:
            self.transform = torchaudio.transforms.MFCC(SAMPLE_RATE, n_mfcc=cfg.n_coeffs, log_mels=True,
                                                        melkwargs={**spec, "n_mels": cfg.n_filters})

    @property
    def dim(self) -> int:
        return self.cfg.n_coeffs * (3 if self.cfg.deltas else 1)

    def forward(self, wave: Tensor, wave_lens: Tensor) -> tuple[Tensor, Tensor]:
        lens = wave_lens // self.hop + 1
        with torch.autocast(device_type=wave.device.type, enabled=False):
            c = self.transform(zero_tail(wave, wave_lens, self.cfg.n_fft))[..., : wave.shape[1] // self.hop + 1]
            if self.cfg.deltas:  # [B, C, T]
                d1 = torchaudio.functional.compute_deltas(hold_last(c, lens))
                c = torch.cat([c, d1, torchaudio.functional.compute_deltas(hold_last(d1, lens))], dim=1)
        return c.transpose(1, 2), lens  # [B, T, F]


class ConstantQ(nn.Module):
    """Log power of a constant-Q transform (Brown and Puckette, 1992): STFT frames times fixed spectral kernels.

    Kernels longer than ``n_fft`` are cut to it, so the lowest bins are wider than constant-Q (cheap on a CPU).
    """

    def __init__(self, cfg: FrontendConfig):
        super().__init__()
        self.cfg = cfg
        self.hop = int(SAMPLE_RATE * cfg.hop_ms / 1000)
        n = cfg.n_fft
        q = 1.0 / (2.0 ** (1.0 / cfg.bins_per_octave) - 1.0)
        freqs = cfg.fmin * 2.0 ** (torch.arange(cfg.n_bins, dtype=torch.float64) / cfg.bins_per_octave)
        if float(freqs[-1]) >= SAMPLE_RATE / 2:
            raise ValueError(f"frontend: the top CQT bin {float(freqs[-1]):.0f} Hz is above the Nyquist frequency")
        kernels = torch.zeros(cfg.n_bins, n, dtype=torch.complex128)
        for k, f in enumerate(freqs.tolist()):
            length = min(math.ceil(q * SAMPLE_RATE / f), n)
            t = torch.arange(length, dtype=torch.float64) - (length - 1) / 2
            kernel = torch.hann_window(length, periodic=False, dtype=torch.float64) / length
            start = (n - length) // 2
            kernels[k, start : start + length] = kernel * torch.exp(2j * math.pi * f * t / SAMPLE_RATE)
        # Parseval: <frame, kernel> = <FFT(frame), FFT(kernel)> / n; a positive-frequency kernel lives in rfft's half.
        spectral = torch.fft.fft(kernels, dim=-1)[:, : n // 2 + 1].conj() / n
        self.register_buffer("kernels", spectral.to(torch.complex64), persistent=False)  # [K, n/2+1]

    @property
    def dim(self) -> int:
        return self.cfg.n_bins

    def forward(self, wave: Tensor, wave_lens: Tensor) -> tuple[Tensor, Tensor]:
        with torch.autocast(device_type=wave.device.type, enabled=False):
            window = torch.ones(self.cfg.n_fft, device=wave.device)  # the kernels carry their own windows
            spec = torch.stft(zero_tail(wave, wave_lens, self.cfg.n_fft), self.cfg.n_fft, self.hop, window=window,
                              center=True, return_complex=True)[..., : wave.shape[1] // self.hop + 1]  # [B, n/2+1, T]
            kernels: Tensor = self.kernels  # type: ignore[assignment]
            power = (kernels @ spec).abs().pow(2)  # [B, K, T]
        return power.clamp_min(1e-10).log().transpose(1, 2), wave_lens // self.hop + 1


class SSLLayers(nn.Module):
    """Softmax-weighted sum of a wav2vec2 encoder's projected input and every transformer layer's output.

    The layer weights start equal and learn which depth carries the generator's traces; with ``ssl_freeze`` the
    encoder stays in eval mode and out of the graph.
    """

    def __init__(self, cfg: FrontendConfig):
        super().__init__()
        self.cfg = cfg
        if not cfg.ssl_encoder:
            raise ValueError("frontend.kind=ssl needs the encoder: train with model.ssl_init=<a suite wav2vec2 dir>")
        self.encoder = Wav2Vec2Encoder(Wav2Vec2Config(**cfg.ssl_encoder))
        self.layer_weights = nn.Parameter(torch.zeros(self.encoder.cfg.num_layers + 1))
        if cfg.ssl_freeze:
            self.encoder.requires_grad_(False)

    @property
    def dim(self) -> int:
        return self.encoder.cfg.d_model

    def train(self, mode: bool = True) -> SSLLayers:
        super().train(mode)
        if self.cfg.ssl_freeze:
            self.encoder.eval()  # no dropout in a frozen feature extractor
        return self

    def hidden_states(self, wave: Tensor, wave_lens: Tensor) -> tuple[list[Tensor], Tensor]:
        """The projected frames and each layer's output ([B, T, D] each), and frame counts."""
        enc = self.encoder
        feats, lens = enc.extract_features(wave, wave_lens)
        x, _ = enc.project(feats)
        valid = lengths_mask(lens, x.shape[1])
        x = x * valid[..., None].to(x.dtype)
        states = [x]
        x = x + enc.pos_conv(x)
        if not enc.cfg.pre_norm:
            x = enc.norm(x)
        x = enc.drop(x)
        for i, layer in enumerate(enc.layers):
            x = layer(x, valid)
            last = i == len(enc.layers) - 1
            states.append(enc.norm(x) if enc.cfg.pre_norm and last else x)
        return states, lens

    def forward(self, wave: Tensor, wave_lens: Tensor) -> tuple[Tensor, Tensor]:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.cfg.ssl_freeze):
            states, lens = self.hidden_states(wave, wave_lens)
        w = F.softmax(self.layer_weights, dim=0)
        mixed = torch.stack([F.layer_norm(s, s.shape[-1:]) for s in states], dim=0)  # [L+1, B, T, D]
        return (w[:, None, None, None] * mixed).sum(0), lens


def build_frontend(cfg: FrontendConfig) -> Cepstral | ConstantQ | SSLLayers:
    """The front-end module named by ``cfg.kind``."""
    if cfg.kind in ("lfcc", "mfcc"):
        return Cepstral(cfg)
    if cfg.kind == "cqt":
        return ConstantQ(cfg)
    return SSLLayers(cfg)


class Frontend(nn.Module):
    """A front-end plus the optional per-utterance normalisation; ``dim`` is the feature width F."""

    def __init__(self, cfg: FrontendConfig):
        super().__init__()
        self.cfg = cfg
        self.features = build_frontend(cfg)
        self.dim = self.features.dim

    def forward(self, wave: Tensor, wave_lens: Tensor) -> tuple[Tensor, Tensor]:
        feats, lens = self.features(wave, wave_lens)
        lens = lens.clamp(1, feats.shape[1])
        return (normalize_frames(feats, lens) if self.cfg.normalize else feats), lens
