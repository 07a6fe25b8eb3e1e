"""Flow matching and the ODE sampler of the TTS acoustic model, checked on analytic vector fields and a tiny net."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from speech.tts.config import FlowTTSConfig, flow_tts
from speech.tts.flow import flow_loss, masked_mse, ot_path, solve, span_mask, time_grid
from speech.tts.model import FlowTTS, expand_units

B, T, M = 2, 12, 4


def tiny_cfg(**kw: object) -> FlowTTSConfig:
    return flow_tts(**{"dim": 32, "depth": 2, "heads": 2, "unit_dim": 8, "conv_pos_groups": 4, "n_mels": M,
                       "vocab_size": 10, "dropout": 0.0, **kw})


def ot_field_to(x1: Tensor, sigma: float):
    """The exact OT vector field that carries any point to ``x1`` at t=1."""
    def field(x: Tensor, t: Tensor, *_: object) -> Tensor:
        return (x1 - (1 - sigma) * x) / (1 - (1 - sigma) * t.view(-1, 1, 1))
    return field


def growth(x: Tensor, t: Tensor, *_: object) -> Tensor:
    """dx/dt = x: curved in time, x(1) = e x(0)."""
    return x


def args(b: int = B) -> tuple[Tensor, Tensor, Tensor]:
    return torch.zeros(b, T, M), torch.zeros(b, T, dtype=torch.bool), torch.ones(b, T, dtype=torch.long)


def test_ot_path_endpoints_and_target_is_its_derivative() -> None:
    x0, x1, sigma = torch.randn(B, T, M), torch.randn(B, T, M), 1e-2
    start, u = ot_path(x0, x1, torch.zeros(B), sigma)
    end, _ = ot_path(x0, x1, torch.ones(B), sigma)
    assert torch.equal(start, x0)
    assert torch.allclose(end, x1 + sigma * x0)
    assert torch.allclose(u, x1 - (1 - sigma) * x0)
    t, h = torch.full((B,), 0.3), 1e-3
    a, _ = ot_path(x0, x1, t, sigma)
    b, _ = ot_path(x0, x1, t + h, sigma)
    assert torch.allclose((b - a) / h, u, atol=1e-2)


def test_span_mask_is_one_contiguous_span_of_the_share() -> None:
    lengths = torch.tensor([10, 50, 200, 1])
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        m = span_mask(lengths, 200, (0.7, 1.0), g)
        for row, n in zip(m, lengths.tolist()):
            idx = row.nonzero().flatten()
            assert len(idx) == idx[-1] - idx[0] + 1  # contiguous
            assert idx[-1] < n and 0.7 * n - 1 <= len(idx) <= n


def test_loss_counts_only_generated_frames() -> None:
    pred, target = torch.randn(B, T, M), torch.randn(B, T, M)
    mask = torch.zeros(B, T, dtype=torch.bool)
    mask[:, 3:9] = True
    base = masked_mse(pred, target, mask)
    changed = target.clone()
    changed[:, :3] += 5.0
    assert masked_mse(pred, changed, mask) == base
    changed[:, 4] += 5.0
    assert masked_mse(pred, changed, mask) > base
    assert torch.allclose(base, ((pred - target)[:, 3:9] ** 2).mean())


def test_flow_loss_ignores_the_context_frames_target() -> None:
    cfg = tiny_cfg(mask_frac=(0.5, 0.5), cond_drop_prob=0.0)
    x1 = torch.randn(1, T, M)
    model = lambda x, t, *_: 0.5 * x
    loss = lambda x: flow_loss(model, x, torch.ones(1, T, dtype=torch.bool), args(1)[2], cfg,
                               torch.Generator().manual_seed(3))
    gen = span_mask(torch.tensor([T]), T, (0.5, 0.5), torch.Generator().manual_seed(3))[0]
    outside, inside = x1.clone(), x1.clone()
    outside[0, ~gen] += 3.0
    inside[0, gen] += 3.0
    assert torch.equal(loss(outside), loss(x1))
    assert not torch.equal(loss(inside), loss(x1))


def test_euler_at_high_nfe_recovers_the_target_of_the_ot_field() -> None:
    x1 = torch.randn(B, T, M)
    out = solve(ot_field_to(x1, 1e-5), *args(), nfe=64, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(out, x1, atol=1e-3)
    x0 = torch.randn(B, T, M)
    assert torch.allclose(solve(growth, *args(), nfe=512, x0=x0), math.e * x0, rtol=5e-3)


def test_midpoint_beats_euler_at_equal_nfe() -> None:
    x0 = torch.randn(B, T, M)
    err = {m: (solve(growth, *args(), nfe=8, method=m, x0=x0) - math.e * x0).abs().max() for m in ("euler", "midpoint")}
    assert err["midpoint"] < err["euler"] / 5


def test_sway_off_is_uniform_and_negative_sway_crowds_small_t() -> None:
    assert torch.equal(time_grid(8, 0.0), torch.linspace(0, 1, 9))
    swayed = time_grid(16, -1.0)
    assert swayed[0] == 0 and torch.isclose(swayed[-1], torch.tensor(1.0)) and (swayed.diff() > 0).all()
    assert (swayed < 0.5).sum() > (time_grid(16) < 0.5).sum() + 2 and swayed[1] < 1 / 16
    calls: list[float] = []

    def record(x: Tensor, t: Tensor, *_: object) -> Tensor:
        calls.append(float(t[0]))
        return torch.zeros_like(x)

    solve(record, *args(), nfe=4, sway=0.0)
    assert calls == pytest.approx([0.0, 0.25, 0.5, 0.75])


def test_guidance_zero_is_one_conditional_pass_and_guidance_mixes_both() -> None:
    seen: list[Tensor] = []

    def field(x: Tensor, t: Tensor, cond: Tensor, cmask: Tensor, units: Tensor, fmask: Tensor,
              drop: Tensor) -> Tensor:
        seen.append(drop.clone())
        return -x + 2.0 * (~drop).float().view(-1, 1, 1)  # the conditional field pushes towards +2

    x0 = torch.randn(B, T, M)
    plain = solve(field, *args(), nfe=4, guidance=0.0, x0=x0)
    assert all(d.shape == (B,) and not d.any() for d in seen)
    seen.clear()
    guided = solve(field, *args(), nfe=4, guidance=1.0, x0=x0)
    assert all(d.tolist() == [False] * B + [True] * B for d in seen)
    assert (guided > plain).all()  # v_c + w (v_c - v_u) adds 2 w more push


def test_infilling_keeps_context_frames_exactly_and_seeds_give_distinct_renditions() -> None:
    torch.manual_seed(0)
    model = FlowTTS(tiny_cfg()).eval()
    cond = torch.randn(B, T, M)
    cmask = torch.zeros(B, T, dtype=torch.bool)
    cmask[:, :5] = True
    fmask = torch.ones(B, T, dtype=torch.bool)
    fmask[1, 9:] = False
    units = torch.randint(2, 10, (B, T))
    run = lambda seed: solve(model, cond, cmask, units, fmask, nfe=4, method="midpoint", guidance=0.7,
                             sway=-1.0, generator=torch.Generator().manual_seed(seed))
    a, b = run(1), run(2)
    assert torch.equal(a[:, :5], cond[:, :5]) and torch.equal(a[1, 9:], torch.zeros(3, M))
    assert torch.equal(a, run(1)) and not torch.allclose(a[0, 5:], b[0, 5:])


def test_expand_units_repeats_ids_by_duration() -> None:
    ids, durs = torch.tensor([[2, 3, 4], [5, 6, 0]]), torch.tensor([[2, 0, 3], [1, 2, 0]])
    assert expand_units(ids, durs).tolist() == [[2, 2, 4, 4, 4], [5, 6, 6, 0, 0]]
    assert expand_units(ids, durs, 7)[0].tolist() == [2, 2, 4, 4, 4, 0, 0]


def test_model_ignores_padding_and_drops_conditioning() -> None:
    torch.manual_seed(0)
    model = FlowTTS(tiny_cfg()).eval()
    x, cond, units = torch.randn(1, 8, M), torch.randn(1, 8, M), torch.randint(2, 10, (1, 8))
    cmask, t = torch.ones(1, 8, dtype=torch.bool), torch.tensor([0.4])
    alone = model(x, t, cond, cmask, units)
    pad = lambda z: torch.cat([z, torch.randn(1, 5, *z.shape[2:]).to(z.dtype)], dim=1)
    fmask = torch.arange(13)[None] < 8
    padded = model(pad(x), t, pad(cond), pad(cmask.long()).bool(), pad(units).clamp(0, 9), fmask)
    assert torch.allclose(padded[:, :8], alone, atol=1e-5) and (padded[:, 8:] == 0).all()
    drop = torch.tensor([True])
    a = model(x, t, cond, cmask, units, drop_cond=drop)
    b = model(x, t, torch.randn(1, 8, M), cmask, torch.randint(2, 10, (1, 8)), drop_cond=drop)
    assert torch.equal(a, b) and not torch.allclose(a, alone)


def test_config_rejects_odd_depth_and_bad_mask_share() -> None:
    with pytest.raises(ValueError, match="even"):
        flow_tts(depth=3)
    with pytest.raises(ValueError, match="mask_frac"):
        flow_tts(mask_frac=(0.9, 0.5))
