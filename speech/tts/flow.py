"""Conditional flow matching on the optimal-transport path (Lipman et al., 2023), as Voicebox trains and samples.

Public API::

    x_t, u = ot_path(x0, x1, t, sigma_min)          # x_t = (1-(1-σ)t) x0 + t x1,  u = x1 - (1-σ) x0
    gen = span_mask(lengths, frames, (0.7, 1.0))    # [B, T] True on one contiguous span of 70-100% per utterance
    loss = masked_mse(pred, target, gen)            # mean squared error over the generated frames only
    loss = flow_loss(model, x1, frame_mask, units, cfg, generator=None)   # training loss (span mask, CFG drop)
    ts = time_grid(steps, sway)                     # [steps+1] ODE times, sway-sampled (F5-TTS) when sway != 0
    x1 = solve(model, cond_mel, cond_mask, units, frame_mask=None, *, nfe=16, method="euler", guidance=0.0,
               sway=0.0, generator=None, x0=None)  # [B, T, n_mels], context frames kept exactly

Everything works on normalised mel frames (``FlowTTS.normalize``). ``model`` is any callable with
``FlowTTS.forward``'s signature ``(x_t, t, cond_mel, cond_mask, units, frame_mask, drop_cond) -> v``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch
from torch import Tensor

from speech.tts.config import FlowTTSConfig

VectorField = Callable[..., Tensor]
"""``(x_t, t, cond_mel, cond_mask, units, frame_mask, drop_cond) -> v`` [B, T, n_mels]."""


def ot_path(x0: Tensor, x1: Tensor, t: Tensor, sigma_min: float) -> tuple[Tensor, Tensor]:
    """The point at ``t`` ([B]) on the straight path from noise ``x0`` to data ``x1``, and the target field there."""
    tt = t.view(-1, *([1] * (x1.dim() - 1)))
    x_t = (1 - (1 - sigma_min) * tt) * x0 + tt * x1
    return x_t, x1 - (1 - sigma_min) * x0


def span_mask(lengths: Tensor, frames: int, frac: tuple[float, float],
              generator: torch.Generator | None = None) -> Tensor:
    """[B, T] bool, True on one contiguous span covering a share in ``frac`` of each utterance (at least 1 frame)."""
    b, device = lengths.shape[0], lengths.device
    share = frac[0] + (frac[1] - frac[0]) * torch.rand(b, generator=generator, device=device)
    n = (share * lengths).round().long().clamp(min=1).minimum(lengths.clamp(min=1))
    start = (torch.rand(b, generator=generator, device=device) * (lengths - n + 1)).long()
    pos = torch.arange(frames, device=device)[None]
    return (pos >= start[:, None]) & (pos < (start + n)[:, None])


def masked_mse(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean squared error over the frames where ``mask`` [B, T] is True (every mel band of them)."""
    w = mask[..., None].to(pred.dtype)
    return ((pred.float() - target.float()) ** 2 * w).sum() / (w.sum() * pred.shape[-1]).clamp_min(1.0)


def flow_loss(model: VectorField, x1: Tensor, frame_mask: Tensor, units: Tensor, cfg: FlowTTSConfig,
              generator: torch.Generator | None = None) -> Tensor:
    """The Voicebox training loss of normalised frames ``x1`` [B, T, n_mels] with frame-aligned ``units`` [B, T].

    A span of ``cfg.mask_frac`` of each utterance is generated from the rest as context; ``cfg.cond_drop_prob`` of
    the samples see neither context nor units (classifier-free guidance); only generated frames count.
    """
    b, n, _ = x1.shape
    device = x1.device
    gen = span_mask(frame_mask.sum(-1), n, cfg.mask_frac, generator) & frame_mask
    t = torch.rand(b, generator=generator, device=device)
    x0 = torch.randn(x1.shape, generator=generator, device=device, dtype=x1.dtype)
    drop = torch.rand(b, generator=generator, device=device) < cfg.cond_drop_prob
    x_t, u = ot_path(x0, x1, t, cfg.sigma_min)
    v = model(x_t, t, x1, frame_mask & ~gen, units, frame_mask, drop)
    return masked_mse(v, u, gen)


def time_grid(steps: int, sway: float = 0.0, device: torch.device | str | None = None) -> Tensor:
    """``steps + 1`` times from 0 to 1: uniform, or sway-sampled ``u + s (cos(πu/2) - 1 + u)`` (F5-TTS).

    ``sway`` < 0 puts more steps at small t, where the flow decides the coarse structure.
    """
    u = torch.linspace(0.0, 1.0, steps + 1, device=device)
    return u + sway * (torch.cos(math.pi / 2 * u) - 1 + u) if sway else u


@torch.no_grad()
def solve(
    model: VectorField, cond_mel: Tensor, cond_mask: Tensor, units: Tensor, frame_mask: Tensor | None = None, *,
    nfe: int = 16, method: str = "euler", guidance: float = 0.0, sway: float = 0.0,
    generator: torch.Generator | None = None, x0: Tensor | None = None,
) -> Tensor:
    """Integrate the flow from noise to normalised mel frames [B, T, n_mels]; frames with ``cond_mask`` stay as given.

    Args:
        cond_mel: normalised known frames [B, T, n_mels] (anything where ``cond_mask`` is False).
        cond_mask: [B, T] bool, True on context frames (the prompt), False on frames to generate.
        units: [B, T] frame-aligned unit ids (``speech.tts.model.expand_units``).
        frame_mask: [B, T] bool, True on real frames (None: all); padding comes back as 0.
        nfe: evaluations of the vector field (a guided evaluation runs its two passes as one batch); ``method``
            "euler" takes ``nfe`` steps, "midpoint" ``nfe // 2`` steps of two evaluations (``nfe`` even).
        guidance: classifier-free guidance strength w, ``v = v_cond + w (v_cond - v_uncond)``; 0 runs one pass.
        sway: sway-sampling coefficient s of the time grid (``time_grid``); 0 keeps uniform steps.
        generator: draws the starting noise (a seeded generator gives reproducible, distinct renditions).
        x0: the starting noise itself, overriding ``generator``.
    """
    if method not in ("euler", "midpoint"):
        raise ValueError(f"method must be 'euler' or 'midpoint', got {method!r}")
    if nfe < 1 or (method == "midpoint" and nfe % 2):
        raise ValueError(f"nfe={nfe}: euler needs at least 1, midpoint an even number of evaluations")
    b, n, _ = cond_mel.shape
    device = cond_mel.device
    frame_mask = torch.ones(b, n, dtype=torch.bool, device=device) if frame_mask is None else frame_mask
    cond_mask = cond_mask & frame_mask
    if x0 is None:
        x0 = torch.randn(cond_mel.shape, generator=generator, device=device, dtype=cond_mel.dtype)
    no_drop = torch.zeros(b, dtype=torch.bool, device=device)

    def field(x: Tensor, t: Tensor) -> Tensor:
        tb = t.expand(b)
        if not guidance:
            return model(x, tb, cond_mel, cond_mask, units, frame_mask, no_drop)
        both = model(torch.cat([x, x]), torch.cat([tb, tb]), torch.cat([cond_mel, cond_mel]),
                     torch.cat([cond_mask, cond_mask]), torch.cat([units, units]),
                     torch.cat([frame_mask, frame_mask]), torch.cat([no_drop, ~no_drop]))
        v_cond, v_uncond = both.chunk(2)
        return v_cond + guidance * (v_cond - v_uncond)

    steps = nfe if method == "euler" else nfe // 2
    ts = time_grid(steps, sway, device)
    x = x0
    for t0, t1 in itertools.pairwise(ts):
        h = t1 - t0
        # Midpoint: the slope at half a step, reached by an Euler half step (second order).
        slope = field(x, t0) if method == "euler" else field(x + h / 2 * field(x, t0), t0 + h / 2)
        x = x + h * slope
    x = torch.where(cond_mask[..., None], cond_mel, x)
    return x * frame_mask[..., None]
