"""The duration model: mel frames per unit, predicted from the units and the known durations of a prompt.

Voicebox's regression duration model (Le et al., 2023, section 3.4): a transformer over unit embeddings whose
input also carries the log-durations of the context units with a mask channel; trained with L1 on
``log(1 + duration)`` of the masked units only, where training masks one contiguous span of 10-100% of each
utterance, so one model predicts with a prompt and without.

Public API::

    duration(**kw) -> DurationConfig; duration_tiny(**kw); duration_small(**kw); duration_config(d)
    model = DurationModel(cfg)
    log_d = model(units, langs, context_log, context_mask, unit_mask)      # [B, N] predicted log(1 + frames)
    frames = model.predict(units, context_durations, context_mask, langs=None, unit_mask=None, scale=1.0, total=None)
    span_mask(unit_mask, min_frac, max_frac); duration_loss(pred, durations, predict, unit_mask)
    round_durations(frames, minimum, total=None) -> list[int]   # whole frames, exact total
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import Tensor, nn

from speech.tts.align import durations, enforce_min


@dataclass
class DurationConfig:
    """A transformer encoder over units that regresses each unit's log duration."""

    vocab_size: int = 2
    """Unit ids including pad (0) and unk (1); set from the ``UnitVocab``."""
    num_langs: int = 1
    """Language ids including 0 for an unknown language; set from the training languages."""
    d_model: int = 128
    """Transformer width."""
    num_layers: int = 3
    """Transformer blocks."""
    num_heads: int = 4
    """Attention heads."""
    ffn_dim: int = 256
    """Feed-forward width."""
    dropout: float = 0.1
    """Dropout inside the blocks."""
    conv_kernel: int = 3
    """Kernel of the convolution over neighbouring units before the transformer (a letter's length depends on
    its neighbours); 1 switches it off."""


def duration(**kw: Any) -> DurationConfig:
    """The dataclass defaults with overrides."""
    return DurationConfig(**kw)


def duration_tiny(**kw: Any) -> DurationConfig:
    """~0.4M parameters: trains in minutes on 2 CPU cores."""
    return duration(**{"d_model": 128, "num_layers": 3, "num_heads": 4, "ffn_dim": 256, **kw})


def duration_small(**kw: Any) -> DurationConfig:
    """~5M parameters, Voicebox's duration model scaled down (it uses 8 layers of width 512)."""
    return duration(**{"d_model": 256, "num_layers": 6, "num_heads": 4, "ffn_dim": 1024, **kw})


def duration_config(d: dict[str, Any]) -> DurationConfig:
    """The config stored in a ``config.json`` dict (unknown keys ignored)."""
    names = {f.name for f in fields(DurationConfig)}
    return DurationConfig(**{k: v for k, v in d.items() if k in names})


def sinusoids(length: int, dim: int, device: torch.device) -> Tensor:
    """Fixed sinusoidal positions [length, dim]: no length limit, nothing to learn from short training rows."""
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10_000.0) / dim))
    out = torch.zeros(length, dim, device=device)
    out[:, 0::2] = torch.sin(pos * freq)
    out[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return out


class DurationModel(nn.Module):
    """Units [B, N] (+ language, + known log-durations with their mask) to log(1 + frames) [B, N]."""

    def __init__(self, cfg: DurationConfig):
        super().__init__()
        self.cfg = cfg
        self.units = nn.Embedding(cfg.vocab_size, cfg.d_model, padding_idx=0)
        self.langs = nn.Embedding(cfg.num_langs, cfg.d_model)
        self.context = nn.Linear(2, cfg.d_model)  # (known log-duration, known?) per unit
        self.conv = (nn.Conv1d(cfg.d_model, cfg.d_model, cfg.conv_kernel, padding=cfg.conv_kernel // 2)
                     if cfg.conv_kernel > 1 else None)
        layer = nn.TransformerEncoderLayer(cfg.d_model, cfg.num_heads, cfg.ffn_dim, cfg.dropout, batch_first=True,
                                           norm_first=True, activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, cfg.num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, 1)

    @property
    def model_type(self) -> str:
        return "tts_duration"

    def forward(self, units: Tensor, langs: Tensor, context_log: Tensor, context_mask: Tensor,
                unit_mask: Tensor) -> Tensor:
        """Predicted log(1 + frames) [B, N].

        Args:
            units: unit ids [B, N] (0 pads).
            langs: language ids [B] (0: unknown).
            context_log: log(1 + frames) of the known units [B, N] (ignored where ``context_mask`` is False).
            context_mask: [B, N] True where the duration is given (the prompt).
            unit_mask: [B, N] True on real units.
        """
        known = context_mask & unit_mask
        ctx = torch.stack([context_log * known, known.to(context_log.dtype)], -1)  # [B, N, 2]
        x = self.units(units) + self.langs(langs)[:, None] + self.context(ctx)  # [B, N, D]
        x = x + sinusoids(units.shape[1], self.cfg.d_model, units.device)
        x = x * unit_mask[..., None]
        if self.conv is not None:
            x = x + self.conv(x.transpose(1, 2)).transpose(1, 2) * unit_mask[..., None]
        x = self.encoder(x, src_key_padding_mask=~unit_mask)
        return self.head(self.norm(x))[..., 0].masked_fill(~unit_mask, 0.0)

    @torch.no_grad()
    def predict(self, units: Tensor, context_durations: Tensor | None = None, context_mask: Tensor | None = None,
                langs: Tensor | None = None, unit_mask: Tensor | None = None, scale: float = 1.0,
                total: Tensor | list[int] | None = None) -> Tensor:
        """Integer mel frames per unit [B, N]: the context's durations kept, the rest predicted.

        Predicted units get at least one frame, except the first and last unit of each row (the silence units).
        ``scale`` stretches the predicted durations (2.0: half the speaking rate); ``total`` [B] instead fixes each
        row's whole length in frames (context included), e.g. the gap an edit must fill.
        """
        unit_mask = units != 0 if unit_mask is None else unit_mask
        ctx_mask = torch.zeros_like(unit_mask) if context_mask is None else context_mask & unit_mask
        ctx = torch.zeros(units.shape, device=units.device) if context_durations is None else context_durations
        langs = torch.zeros(units.shape[0], dtype=torch.long, device=units.device) if langs is None else langs
        pred = self(units, langs, torch.log1p(ctx.float().clamp_min(0)), ctx_mask, unit_mask)
        frames = torch.expm1(pred).clamp_min(0.0) * scale  # [B, N]
        out = torch.zeros(units.shape, dtype=torch.long, device=units.device)
        for b in range(units.shape[0]):
            n = int(unit_mask[b].sum())
            known = ctx_mask[b, :n]
            todo = (~known).nonzero()[:, 0].tolist()
            out[b, :n] = ctx[b, :n].round().long() * known
            if not todo:
                continue
            left = None if total is None else int(total[b]) - int(out[b, :n].sum())
            minimum = [0 if i in (0, n - 1) else 1 for i in todo]
            try:
                pred_b = round_durations(frames[b, todo].tolist(), minimum, left)
            except ValueError as e:
                raise ValueError(f"row {b}: {e}") from None
            out[b, todo] = torch.tensor(pred_b, dtype=torch.long, device=units.device)
        return out


def round_durations(frames: Sequence[float], minimum: Sequence[int], total: int | None = None) -> list[int]:
    """Whole frames for fractional ones, each at least its ``minimum``; rescaled to sum to ``total`` when given.

    The running sum is rounded rather than each unit, so the length does not drift by up to half a frame a unit.
    """
    if total is not None:
        if total < sum(minimum):
            raise ValueError(f"{total} frames can't hold {len(frames)} units of at least {list(minimum)} frames")
        s = float(sum(frames))
        frames = [f * total / s for f in frames] if s > 0 else [total / len(frames)] * len(frames)
    cum, acc = [0], 0.0
    for f in frames:
        acc += f
        cum.append(round(acc))
    if total is not None:
        cum[-1] = total  # float error must not cost the exact length
    if cum[-1] < sum(minimum):  # no total to keep: raise the short ones
        return [max(b - a, m) for a, b, m in zip(cum[:-1], cum[1:], minimum)]
    return durations(enforce_min(cum, minimum))


def span_mask(unit_mask: Tensor, min_frac: float = 0.1, max_frac: float = 1.0,
              generator: torch.Generator | None = None) -> Tensor:
    """[B, N] True on one contiguous span per row of ``min_frac``-``max_frac`` of its units (at least one)."""
    lens = unit_mask.sum(1)  # [B]
    frac = min_frac + (max_frac - min_frac) * torch.rand(lens.shape, generator=generator)
    width = (frac * lens.float().cpu()).round().long().clamp(min=1).minimum(lens.cpu())  # [B]
    start = (torch.rand(lens.shape, generator=generator) * (lens.cpu() - width + 1).float()).long()
    pos = torch.arange(unit_mask.shape[1])[None]
    mask = (pos >= start[:, None]) & (pos < (start + width)[:, None])
    return mask.to(unit_mask.device) & unit_mask


def duration_loss(pred: Tensor, durations: Tensor, predict: Tensor, unit_mask: Tensor) -> Tensor:
    """Mean L1 between predicted and true log(1 + frames) over the units to predict (``predict & unit_mask``)."""
    sel = predict & unit_mask
    err = (pred.float() - torch.log1p(durations.float())).abs()
    return (err * sel).sum() / sel.sum().clamp_min(1)
