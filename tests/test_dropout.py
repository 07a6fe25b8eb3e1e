"""common.layers.Dropout: nn.Dropout's behaviour with a fast CPU mask."""

from __future__ import annotations

import torch

from common.layers import Dropout


def test_drops_the_share_asked_everywhere_and_keeps_the_expectation() -> None:
    torch.manual_seed(0)
    x = torch.ones(300, 1_000)
    y = Dropout(0.1).train()(x)
    dropped = y == 0
    assert abs(dropped.float().mean().item() - 0.1) < 0.002
    # every one of the four 16-bit lanes of a 64-bit draw is uniform (a lane from biased bits would show here)
    lanes = dropped.view(-1)[: 300_000 // 4 * 4].view(-1, 4).float().mean(0)
    assert (lanes - 0.1).abs().max() < 0.004
    assert torch.allclose(y[~dropped], torch.full_like(y[~dropped], 65_536 / (65_536 - round(0.1 * 65_536))))
    assert abs(y.mean().item() - 1.0) < 0.01


def test_gradient_flows_through_the_kept_elements_only_and_seeds_fix_the_mask() -> None:
    drop = Dropout(0.3).train()
    x = torch.randn(64, 33, requires_grad=True)
    torch.manual_seed(1)
    y = drop(x)
    y.backward(torch.ones_like(y))
    assert x.grad is not None
    torch.testing.assert_close(x.grad, torch.where(y != 0, y / x.detach(), 0.0))
    torch.manual_seed(1)
    torch.testing.assert_close(drop(x), y)
    assert not torch.equal(drop(x), y)  # the next call draws a new mask


def test_eval_mode_and_zero_rate_pass_through_and_state_matches_nn_dropout() -> None:
    x = torch.randn(5, 7)
    assert Dropout(0.5).eval()(x) is x
    assert Dropout(0.0).train()(x) is x
    assert Dropout(1.0).train()(x).eq(0).all()
    assert Dropout(0.2).state_dict() == torch.nn.Dropout(0.2).state_dict() == {}
    assert isinstance(Dropout(0.2), torch.nn.Dropout)
