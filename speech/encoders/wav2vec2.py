"""Wav2vec 2.0 encoder (Baevski et al., 2020): conv waveform features, conv positions, transformer.

Covers wav2vec2-base (group norm, post-LN) and XLS-R / MMS / Omnilingual (layer norm, pre-LN).
Padding is exact: a padded utterance gives the frames it gives alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from common.layers import Dropout


@dataclass
class Wav2Vec2Config:
    """Architecture of a wav2vec2-style encoder over 16 kHz waveforms."""

    conv_dims: tuple[int, ...] = (512,) * 7
    """Channels of each waveform convolution."""
    conv_kernels: tuple[int, ...] = (10, 3, 3, 3, 3, 2, 2)
    """Kernel size of each waveform convolution."""
    conv_strides: tuple[int, ...] = (5, 2, 2, 2, 2, 2, 2)
    """Stride of each waveform convolution (the product is the frame hop: 320 = 20 ms)."""
    conv_bias: bool = False
    """Whether the waveform convolutions have biases (XLS-R/MMS: yes)."""
    feature_norm: str = "group"
    """"group": per-channel norm after the first conv only (wav2vec2-base); "layer": LayerNorm after each."""
    d_model: int = 768
    """Transformer width."""
    num_layers: int = 12
    """Transformer layers."""
    num_heads: int = 12
    """Attention heads; ``d_model`` must divide evenly."""
    ffn_dim: int = 3072
    """Feed-forward hidden size."""
    pos_conv_kernel: int = 128
    """Kernel of the convolutional relative positional embedding (frames)."""
    pos_conv_groups: int = 16
    """Groups of the positional convolution."""
    pre_norm: bool = False
    """Pre-LN ("stable layer norm", XLS-R/MMS) instead of post-LN (base)."""
    normalize_wave: bool = False
    """Zero-mean unit-variance per utterance on the input, as the checkpoint's feature extractor did."""
    dropout: float = 0.1
    """Dropout on hidden states (projection, residual branches)."""
    attention_dropout: float = 0.1
    """Dropout on attention weights."""
    layer_norm_eps: float = 1e-5
    """Epsilon of the transformer's LayerNorms."""
    adapter_dim: int | None = None
    """Bottleneck of MMS's language adapter after each pre-LN layer (None: no adapters)."""

    def __post_init__(self) -> None:
        self.conv_dims, self.conv_kernels = tuple(self.conv_dims), tuple(self.conv_kernels)
        self.conv_strides = tuple(self.conv_strides)
        if not len(self.conv_dims) == len(self.conv_kernels) == len(self.conv_strides):
            raise ValueError("conv_dims, conv_kernels and conv_strides must have the same length")
        if self.feature_norm not in ("group", "layer"):
            raise ValueError(f"feature_norm must be 'group' or 'layer', got {self.feature_norm!r}")
        if self.d_model % self.num_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by num_heads {self.num_heads}")


def wav2vec2(**overrides: object) -> Wav2Vec2Config:
    """A wav2vec2 encoder configuration with explicit overrides."""
    return Wav2Vec2Config(**overrides)  # type: ignore[arg-type]


def wav2vec2_base(**overrides: object) -> Wav2Vec2Config:
    """wav2vec2-base, 95M parameters: group norm, post-LN."""
    return wav2vec2(**overrides)


def xlsr_300m(**overrides: object) -> Wav2Vec2Config:
    """XLS-R 300M, the shape of MMS-300M and Omnilingual ASR 300M: layer norm, pre-LN."""
    return wav2vec2(**{"conv_bias": True, "feature_norm": "layer", "d_model": 1024, "num_layers": 24,
                       "num_heads": 16, "ffn_dim": 4096, "pre_norm": True, "normalize_wave": True, **overrides})


def mms_1b(**overrides: object) -> Wav2Vec2Config:
    """MMS-1B / XLS-R 1B: 48 pre-LN layers of width 1280."""
    return xlsr_300m(**{"d_model": 1280, "num_layers": 48, "ffn_dim": 5120, **overrides})


def wav2vec2_tiny(**overrides: object) -> Wav2Vec2Config:
    """About 1.5M parameters with the full 320-sample hop: for tests and CPU training."""
    return xlsr_300m(**{"conv_dims": (128, 128, 128, 128, 128, 128, 128), "d_model": 144, "num_layers": 4,
                        "num_heads": 4, "ffn_dim": 576, "pos_conv_kernel": 32, "pos_conv_groups": 4, **overrides})


def lengths_mask(lens: Tensor, size: int) -> Tensor:
    """[B, size] True at the first ``lens[b]`` positions."""
    return torch.arange(size, device=lens.device)[None] < lens[:, None]


class ConvFeatureExtractor(nn.Module):
    """Waveform [B, S] to conv features [B, T, C] with strided 1-D convolutions and GELU."""

    def __init__(self, cfg: Wav2Vec2Config):
        super().__init__()
        self.cfg = cfg
        chans = (1, *cfg.conv_dims)
        self.convs = nn.ModuleList(
            nn.Conv1d(chans[i], chans[i + 1], k, stride=s, bias=cfg.conv_bias)
            for i, (k, s) in enumerate(zip(cfg.conv_kernels, cfg.conv_strides))
        )
        self.norms = nn.ModuleList(
            [nn.LayerNorm(c) for c in cfg.conv_dims] if cfg.feature_norm == "layer"
            else [nn.GroupNorm(cfg.conv_dims[0], cfg.conv_dims[0])]
        )

    def receptive_field(self) -> int:
        """Samples behind one output frame (400 = 25 ms for the standard stack)."""
        r = 1
        for k, s in reversed(list(zip(self.cfg.conv_kernels, self.cfg.conv_strides))):
            r = (r - 1) * s + k
        return r

    def output_lens(self, lens: Tensor) -> Tensor:
        """Frames each layer keeps: only windows that lie wholly inside the input."""
        for k, s in zip(self.cfg.conv_kernels, self.cfg.conv_strides):
            lens = torch.div(lens - k, s, rounding_mode="floor") + 1
        return lens.clamp_min(0)

    def forward(self, wave: Tensor, wave_lens: Tensor) -> tuple[Tensor, Tensor]:
        # A batch shorter than one frame still runs (its utterances get 0 frames).
        wave = F.pad(wave, (0, max(0, self.receptive_field() - wave.shape[-1])))
        if not torch.is_grad_enabled():
            return self._forward_each(wave, wave_lens)
        x, lens = wave[:, None, :], wave_lens  # [B, 1, S]
        for i, (conv, k, s) in enumerate(zip(self.convs, self.cfg.conv_kernels, self.cfg.conv_strides)):
            x = conv(x)  # [B, C, T_i]
            lens = torch.div(lens - k, s, rounding_mode="floor") + 1
            if self.cfg.feature_norm == "layer":
                x = self.norms[i](x.transpose(1, 2)).transpose(1, 2)
            elif i == 0:
                x = self._masked_instance_norm(x, lens.clamp_min(1))
            x = F.gelu(x)
        return x.transpose(1, 2), lens.clamp_min(0)  # [B, T, C]

    def _forward_each(self, wave: Tensor, wave_lens: Tensor) -> tuple[Tensor, Tensor]:
        """Inference: one utterance at a time over its own samples, normalised and activated in place.

        The first layers' [C, S/5] activations are the widest tensors of the model; run one utterance at a
        time, without padding, and with one copy of each alive, they bound the peak memory by the longest
        utterance instead of the batch (and no compute goes to padding).
        """
        lens = self.output_lens(wave_lens)
        width = int(self.output_lens(torch.tensor(wave.shape[-1])))  # the frames of the padded batch
        out = wave.new_zeros(wave.shape[0], width, self.cfg.conv_dims[-1])  # [B, T, C]
        if wave.device.type == "cpu" and torch.is_autocast_enabled("cpu") and \
                torch.get_autocast_dtype("cpu") == torch.bfloat16:
            weights = self._unfolded_weights(torch.bfloat16)
            out = out.to(torch.bfloat16)
            for b, n in enumerate(wave_lens.tolist()):
                t = int(lens[b])
                if t > 0:
                    padded = F.pad(wave[b, :n], (0, self._bucket_samples(t) - n))  # >= 0
                    out[b, :t] = self._frames_unfolded(padded, weights, n)[:t]
            return out, lens
        for b, n in enumerate(wave_lens.tolist()):
            if int(lens[b]) == 0:
                continue
            x = wave[b : b + 1, None, :n]  # [1, 1, S_b]
            for i, conv in enumerate(self.convs):
                x = conv(x)  # [1, C, T_i]
                if self.cfg.feature_norm == "layer":
                    norm = self.norms[i]
                    assert isinstance(norm, nn.LayerNorm)
                    _normalize_(x, 1, norm.weight, norm.bias, norm.eps)  # over channels, per frame
                elif i == 0:
                    group = self.norms[0]
                    assert isinstance(group, nn.GroupNorm)
                    _normalize_(x, 2, group.weight, group.bias, group.eps)  # over frames, per channel
                torch.ops.aten.gelu_(x)
            out[b, : x.shape[-1]] = x[0].T  # [T_b, C]
        return out, lens

    def _unfolded_weights(self, dtype: torch.dtype) -> list[Tensor]:
        """Each convolution's weight [C_out, C_in, k] as the matrix [k * C_in, C_out] its unfolded windows meet."""
        return [c.weight.detach().permute(2, 1, 0).reshape(-1, c.out_channels).to(dtype) for c in self._convs()]

    def _bucket_samples(self, frames: int) -> int:
        """Samples to run an utterance of ``frames`` frames on: its frames rounded up to one of 8 sizes an octave.

        oneDNN compiles a matmul kernel for each new shape (10-15 ms here, as long as the matmul of a few seconds
        of audio), and every utterance length would be a new shape in each layer; rounded up, a job meets a few
        dozen shapes and compiles each once, for at most 1/8 more front-end work. The padding's frames are cut off:
        a valid frame's window lies inside the utterance.
        """
        step = 1 << max(0, frames.bit_length() - 4)  # frames in [8 step, 16 step): 8 buckets an octave
        hop = math.prod(self.cfg.conv_strides)
        # The longest input with that many frames, so never shorter than the utterance (whose samples past its last
        # frame still enter the first layer's norm statistics).
        return self.receptive_field() + -(-frames // step) * step * hop - 1

    def _convs(self) -> list[nn.Conv1d]:
        """The convolutions, typed."""
        return [conv for conv in self.convs if isinstance(conv, nn.Conv1d)]

    def _frames_unfolded(self, wave: Tensor, weights: list[Tensor], valid: int | None = None) -> Tensor:
        """One utterance [S] to frames [T, C] time-major, each convolution one matmul over its windows.

        CPU bf16 inference: the windows of a [T, C] time-major signal are rows of a strided view, so every layer is
        a bf16 matmul, which runs on the matrix units of CPUs that have them (AMX); oneDNN's bf16 convolutions over
        [C, T] were barely faster than fp32 (benchmarks/hf_pipeline_throughput.py). Windows that overlap by one row
        (kernel 3, stride 2) take two matmuls instead of a copy; the first layer's group norm is folded into its
        weights (``_fold_group_norm``), with statistics over the windows of the first ``valid`` samples (all
        of ``wave`` by default; the rest is padding).
        """
        x = wave[:, None]  # [S, 1], fp32 until the first matmul
        for i, (conv, w, k, s) in enumerate(zip(self._convs(), weights, self.cfg.conv_kernels, self.cfg.conv_strides)):
            t, c = (x.shape[0] - k) // s + 1, x.shape[1]
            windows = x.as_strided((t, k * c), (s * c, 1))  # row j: input rows j*s .. j*s+k-1, end to end
            bias = conv.bias
            if i == 0 and self.cfg.feature_norm != "layer":  # bias: the conv's and the norm's, folded
                w, bias = self._fold_group_norm(windows[: ((valid or len(wave)) - k) // s + 1], w.dtype)
            if k == s + 1:  # rows j*s .. j*s+s-1 of each window, then its last row (the next window's first)
                y = x.as_strided((t, s * c), (s * c, 1)).to(w.dtype) @ w[: s * c]
                y.addmm_(windows[:, s * c :].to(w.dtype), w[s * c :])
                if bias is not None:
                    y.add_(bias.to(y.dtype))
            else:
                windows = (windows if k == s else windows.contiguous()).to(w.dtype)
                y = windows @ w if bias is None else torch.addmm(bias.to(w.dtype), windows, w)
            if self.cfg.feature_norm == "layer":
                norm = self.norms[i]
                assert isinstance(norm, nn.LayerNorm)
                y = F.layer_norm(y, norm.normalized_shape, norm.weight.to(y.dtype), norm.bias.to(y.dtype), norm.eps)
            x = torch.ops.aten.gelu_(y)
        return x

    def _fold_group_norm(self, windows: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """The first convolution with its per-channel group norm folded in, as (weight [k, C], bias [C]).

        The first layer maps each window (k samples) linearly to C channels, so every channel's mean and variance
        over the utterance follow from the windows' k-vector mean and k x k covariance (fp32): the norm costs no
        pass over the [T, C] activations, the widest of the model.
        """
        conv, group = self._convs()[0], self.norms[0]
        assert isinstance(group, nn.GroupNorm)
        with torch.autocast(windows.device.type, enabled=False):  # statistics in fp32: autocast would round them
            w = conv.weight[:, 0, :].T.float()  # [k, C]
            windows = windows.float()
            mu = windows.mean(0)
            centred = windows - mu
            cov = centred.T @ centred / windows.shape[0]  # [k, k]
            var = ((cov @ w) * w).sum(0).clamp_min(0.0)  # [C]: w_c' cov w_c (>= 0 but for rounding)
            scale = group.weight * torch.rsqrt(var + group.eps)
            bias = group.bias - (mu @ w) * scale  # the channel means; a conv bias would cancel in the norm
        return (w * scale).to(dtype), bias.to(dtype)

    def _masked_instance_norm(self, x: Tensor, lens: Tensor) -> Tensor:
        """GroupNorm with one group per channel, with statistics over each utterance's valid frames only."""
        norm = self.norms[0]
        assert isinstance(norm, nn.GroupNorm)
        t = x.shape[-1]
        # One utterance at a time: fewer [B, C, T] temporaries than masked sums (this is the widest layer).
        return torch.cat([
            F.pad(F.group_norm(x[b : b + 1, :, :n], norm.num_groups, norm.weight, norm.bias, norm.eps), (0, t - n))
            for b, n in enumerate(lens.tolist())
        ])


def _normalize_(x: Tensor, dim: int, weight: Tensor, bias: Tensor, eps: float) -> None:
    """In place: zero mean, unit variance along ``dim`` of [1, C, T], then the per-channel affine."""
    var, mean = torch.var_mean(x, dim=dim, keepdim=True, correction=0)
    scale = torch.rsqrt(var + eps)
    x.sub_(mean).mul_(scale).mul_(weight[:, None].to(x.dtype)).add_(bias[:, None].to(x.dtype))  # bf16 stays bf16


class PositionalConv(nn.Module):
    """Convolutional relative positional embedding; the weight is stored with weight norm folded in."""

    def __init__(self, d: int, kernel: int, groups: int):
        super().__init__()
        self.conv = nn.Conv1d(d, d, kernel, padding=kernel // 2, groups=groups)
        nn.init.normal_(self.conv.weight, std=(4.0 / (kernel * d)) ** 0.5)
        nn.init.zeros_(self.conv.bias)  # type: ignore[arg-type]
        self.trim = 1 if kernel % 2 == 0 else 0

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x.transpose(1, 2))  # [B, D, T + 1 - trim]
        return F.gelu(y[..., : y.shape[-1] - self.trim]).transpose(1, 2)


class SelfAttention(nn.Module):
    """Multi-head self-attention with separate q/k/v projections and a key padding mask."""

    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.q, self.k, self.v, self.out = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        """``mask`` [B, T]: True at the keys to attend to; None when no utterance is padded."""
        b, t, d = x.shape

        def split(y: Tensor) -> Tensor:
            return y.view(b, t, self.heads, d // self.heads).transpose(1, 2)  # [B, H, T, Dh]

        keep = None if mask is None else mask[:, None, None, :]  # [B, 1, 1, T]
        y = F.scaled_dot_product_attention(
            split(self.q(x)), split(self.k(x)), split(self.v(x)), attn_mask=keep,
            dropout_p=self.dropout if self.training else 0.0,
        )
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class LanguageAdapter(nn.Module):
    """MMS's per-language bottleneck (Pratap et al., 2023): LayerNorm, down, ReLU, up; added to the residual."""

    def __init__(self, d: int, bottleneck: int):
        super().__init__()
        self.norm, self.down, self.up = nn.LayerNorm(d), nn.Linear(d, bottleneck), nn.Linear(bottleneck, d)

    def forward(self, x: Tensor) -> Tensor:
        return self.up(F.relu(self.down(self.norm(x))))


class TransformerLayer(nn.Module):
    """Attention and feed-forward with LayerNorm before (pre-LN) or after (post-LN) each residual."""

    def __init__(self, cfg: Wav2Vec2Config):
        super().__init__()
        d = cfg.d_model
        self.pre_norm = cfg.pre_norm
        self.attn = SelfAttention(d, cfg.num_heads, cfg.attention_dropout)
        self.attn_norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.fc1, self.fc2 = nn.Linear(d, cfg.ffn_dim), nn.Linear(cfg.ffn_dim, d)
        self.ffn_norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.drop = Dropout(cfg.dropout)
        self.adapter = LanguageAdapter(d, cfg.adapter_dim) if cfg.adapter_dim and cfg.pre_norm else None

    def _ffn(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(F.gelu(self.fc1(x)))))

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        if self.pre_norm:
            x = x + self.drop(self.attn(self.attn_norm(x), mask))
            x = x + self._ffn(self.ffn_norm(x))
            return x if self.adapter is None else x + self.adapter(x)
        x = self.attn_norm(x + self.drop(self.attn(x, mask)))
        return self.ffn_norm(x + self._ffn(x))


class Wav2Vec2Encoder(nn.Module):
    """Waveforms [B, S] to contextual frames [B, T, D] (20 ms hop) and their lengths.

    The pieces an SSL objective needs are separate methods: ``extract_features`` (conv features
    before projection), ``project``, ``apply_mask`` (the learned mask embedding) and ``contextualize``.
    """

    def __init__(self, cfg: Wav2Vec2Config):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.feature_extractor = ConvFeatureExtractor(cfg)
        self.proj_norm = nn.LayerNorm(cfg.conv_dims[-1], eps=cfg.layer_norm_eps)
        self.proj = nn.Linear(cfg.conv_dims[-1], d)
        self.mask_emb = nn.Parameter(torch.rand(d))
        self.pos_conv = PositionalConv(d, cfg.pos_conv_kernel, cfg.pos_conv_groups)
        # Post-LN normalises after adding positions; pre-LN normalises the transformer's output.
        self.norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.layers = nn.ModuleList(TransformerLayer(cfg) for _ in range(cfg.num_layers))
        self.drop = Dropout(cfg.dropout)

    def output_lens(self, wave_lens: Tensor) -> Tensor:
        """Frames produced for waveforms of ``wave_lens`` samples."""
        return self.feature_extractor.output_lens(wave_lens)

    def normalize(self, wave: Tensor, wave_lens: Tensor) -> Tensor:
        """Zero mean, unit variance over each utterance's valid samples; padding stays zero."""
        m = lengths_mask(wave_lens, wave.shape[-1]).to(wave.dtype)  # [B, S]
        n = wave_lens.clamp_min(1)[:, None].to(wave.dtype)
        mean = (wave * m).sum(-1, keepdim=True) / n
        var = ((wave - mean).pow(2) * m).sum(-1, keepdim=True) / n
        return (wave - mean) * torch.rsqrt(var + 1e-7) * m

    def extract_features(self, wave: Tensor, wave_lens: Tensor) -> tuple[Tensor, Tensor]:
        """Conv features [B, T, C] before projection, and frame counts [B]."""
        if self.cfg.normalize_wave:
            wave = self.normalize(wave, wave_lens)
        return self.feature_extractor(wave, wave_lens)

    def project(self, feats: Tensor) -> tuple[Tensor, Tensor]:
        """LayerNorm and projection to the model width: (projected [B, T, D], normalised [B, T, C])."""
        normed = self.proj_norm(feats)
        return self.drop(self.proj(normed)), normed

    def apply_mask(self, x: Tensor, mask: Tensor) -> Tensor:
        """Replace the frames where ``mask`` [B, T] is True with the learned mask embedding."""
        return torch.where(mask[..., None], self.mask_emb.to(x.dtype), x)

    def contextualize(self, x: Tensor, lens: Tensor) -> Tensor:
        """Positional convolution and transformer layers over projected frames [B, T, D]."""
        valid = lengths_mask(lens, x.shape[1])  # [B, T]
        padded = not bool(valid.all())
        if padded:
            x = x * valid[..., None].to(x.dtype)  # the positional conv must read zeros past the end
        x = x + self.pos_conv(x)
        if not self.cfg.pre_norm:
            x = self.norm(x)
        x = self.drop(x)
        mask = valid if padded else None  # unpadded batches attend without a mask (a faster kernel path)
        for layer in self.layers:
            x = layer(x, mask)
        return self.norm(x) if self.cfg.pre_norm else x

    def forward(self, wave: Tensor, wave_lens: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        feats, lens = self.extract_features(wave, wave_lens)
        x, _ = self.project(feats)
        if mask is not None:
            x = self.apply_mask(x, mask)
        return self.contextualize(x, lens), lens

