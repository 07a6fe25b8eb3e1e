"""common.losses: each loss against a hand-written formula, gradients to the temperature, and a real two-process gloo
group whose mean loss (and gathered input gradients) equal one process on the whole global batch."""

from __future__ import annotations

import math
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import Tensor, nn

from common.losses import ContrastiveLoss, CosineQueueLoss, InfoNCELoss, SigmoidLoss


def _randn(*shape: int, seed: int = 0) -> Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ---- hand-written references -------------------------------------------------------------------------------------


def test_info_nce_is_cross_entropy_of_scaled_cosines() -> None:
    a, b = _randn(6, 5, seed=1), _randn(6, 5, seed=2)  # not normalised: the loss normalises
    loss = InfoNCELoss(temperature=0.1)
    an, bn = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    logits = 10.0 * an @ bn.T  # [6, 6] image -> text; its transpose is text -> image
    expected = 0.5 * (F.cross_entropy(logits, torch.arange(6)) + F.cross_entropy(logits.T, torch.arange(6)))
    torch.testing.assert_close(loss(a, b), expected)
    # Matching pairs score lower than shuffled ones.
    assert loss(a, a) < loss(a, a[torch.roll(torch.arange(6), 1)])


def test_info_nce_exclude_leaves_other_matches_out_of_both_softmaxes() -> None:
    a, b = _randn(4, 5, seed=5), _randn(4, 5, seed=6)
    loss = InfoNCELoss(temperature=0.1)
    exclude = torch.zeros(4, 4, dtype=torch.bool)
    exclude[0, 2] = exclude[3, 1] = exclude[1, 1] = True  # (a_0, b_2) and (a_3, b_1) also match; a diagonal is ignored
    an, bn = F.normalize(a, dim=1), F.normalize(b, dim=1)
    logits = 10.0 * an @ bn.T
    fwd = logits.clone()
    fwd[0, 2] = fwd[3, 1] = -math.inf
    back = logits.T.clone()
    back[2, 0] = back[1, 3] = -math.inf
    target = torch.arange(4)
    expected = 0.5 * (F.cross_entropy(fwd, target) + F.cross_entropy(back, target))
    torch.testing.assert_close(loss(a, b, exclude), expected)
    torch.testing.assert_close(loss(a, b, torch.eye(4, dtype=torch.bool)), loss(a, b))


def test_info_nce_gradient_reaches_the_temperature_and_is_clamped() -> None:
    a, b = F.normalize(_randn(6, 5, seed=3), dim=1), F.normalize(_randn(6, 5, seed=4), dim=1)
    loss = InfoNCELoss(temperature=0.07)
    loss(a, b).backward()
    # The same loss with the log-scale as a plain leaf tensor.
    t = torch.tensor(math.log(1 / 0.07), requires_grad=True)
    logits = t.exp() * a @ b.T
    (0.5 * (F.cross_entropy(logits, torch.arange(6)) + F.cross_entropy(logits.T, torch.arange(6)))).backward()
    assert loss.logit_scale.grad is not None and t.grad is not None and loss.logit_scale.grad.abs() > 1e-4
    torch.testing.assert_close(loss.logit_scale.grad, t.grad)
    with torch.no_grad():
        loss.logit_scale.fill_(math.log(1000.0))
    assert loss.scale.item() == pytest.approx(100.0)  # CLIP's cap
    loss.logit_scale.grad = None
    loss(a, b).backward()
    assert loss.logit_scale.grad is not None and loss.logit_scale.grad.item() == 0.0
    fixed = InfoNCELoss(temperature=0.5, learnable=False)
    assert not fixed.logit_scale.requires_grad and fixed.scale.item() == pytest.approx(2.0)
    with pytest.raises(ValueError, match="equal"):
        loss(a, b[:4])
    with pytest.raises(ValueError, match="positive"):
        InfoNCELoss(temperature=0.0)


def test_sigmoid_loss_with_one_positive_per_row_is_siglip() -> None:
    x, y = F.normalize(_randn(5, 4, seed=5), dim=1), F.normalize(_randn(5, 4, seed=6), dim=1)
    loss = SigmoidLoss(temperature=0.1, bias=-10.0)
    # SigLIP's pseudo-code: labels = 2 * eye(n) - 1; l = -sum(log_sigmoid(labels * logits)) / n.
    logits = 10.0 * x @ y.T - 10.0
    labels = 2 * torch.eye(5) - 1
    expected = -torch.log(torch.sigmoid(labels * logits)).sum() / 5
    torch.testing.assert_close(loss(x, y), expected)
    torch.testing.assert_close(loss(x, y, positives=torch.eye(5, dtype=torch.bool)), expected)
    torch.testing.assert_close(loss(x, y, x_ids=torch.arange(5), y_ids=torch.arange(5)), expected)
    loss(x, y).backward()
    for p in (loss.logit_scale, loss.logit_bias):
        assert p.grad is not None and p.grad.abs() > 1e-4


def test_sigmoid_loss_with_several_positives_per_row_by_brute_force() -> None:
    # Three images, two captions each; images 1 and 2 share a group (say, the same product photographed twice).
    x, y = _randn(3, 4, seed=7), _randn(6, 4, seed=8)
    x_ids, y_ids = torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1, 1, 1, 1])
    loss = SigmoidLoss(temperature=0.2, bias=-3.0)
    total = 0.0
    for i in range(3):
        for j in range(6):
            z = 5.0 * F.cosine_similarity(x[i], y[j], dim=0).item() - 3.0
            p = 1 / (1 + math.exp(-z))
            total += -math.log(p) if x_ids[i] == y_ids[j] else -math.log(1 - p)
    assert loss(x, y, x_ids=x_ids, y_ids=y_ids).item() == pytest.approx(total / 3, rel=1e-5)
    mask = x_ids[:, None] == y_ids[None, :]
    torch.testing.assert_close(loss(x, y, positives=mask), loss(x, y, x_ids=x_ids, y_ids=y_ids))
    with pytest.raises(ValueError, match=r"positives must be \[B, N\]"):
        loss(x, y, positives=mask[:, :4])
    with pytest.raises(ValueError, match="ids must be"):
        loss(x, y, x_ids=x_ids, y_ids=y_ids[:4])
    with pytest.raises(ValueError, match="pair up"):
        loss(x, y)
    with pytest.raises(ValueError, match="go together"):
        loss(x, y, x_ids=x_ids)


def test_cosine_queue_loss_by_hand() -> None:
    pred, target = _randn(4, 3, seed=9), _randn(4, 3, seed=10)
    pred2, target2 = _randn(4, 3, seed=11), _randn(4, 3, seed=12)
    loss = CosineQueueLoss(dim=3, queue_size=6, cosine_weight=0.5, contrastive_weight=2.0, temperature=0.1)
    p, t = F.normalize(pred, dim=1), F.normalize(target, dim=1)
    p2, t2 = F.normalize(pred2, dim=1), F.normalize(target2, dim=1)
    cos = 1 - F.cosine_similarity(pred, target, dim=1).mean()
    first = 0.5 * cos + 2.0 * F.cross_entropy(10.0 * p @ t.T, torch.arange(4))  # the queue starts empty
    torch.testing.assert_close(loss(pred, target), first)
    torch.testing.assert_close(loss.queue[:4], t)
    assert (loss.queue_len.item(), loss.queue_ptr.item()) == (4, 4)
    # Step 2: the four past targets are extra negatives.
    cos2 = 1 - F.cosine_similarity(pred2, target2, dim=1).mean()
    second = 0.5 * cos2 + 2.0 * F.cross_entropy(10.0 * p2 @ torch.cat([t2, t]).T, torch.arange(4))
    torch.testing.assert_close(loss(pred2, target2), second)
    # FIFO of 6: the oldest two rows of step 1 were overwritten by the last two of step 2.
    torch.testing.assert_close(loss.queue, torch.cat([t2[2:], t[2:], t2[:2]]))
    assert (loss.queue_len.item(), loss.queue_ptr.item()) == (6, 2)
    loss.eval()
    before = loss.queue.clone()
    terms = loss.components(pred, target)
    third = F.cross_entropy(10.0 * p @ torch.cat([t, t2[2:], t[2:], t2[:2]]).T, torch.arange(4))
    torch.testing.assert_close(terms["contrastive"], third)
    torch.testing.assert_close(loss(pred, target), 0.5 * terms["cosine"] + 2.0 * third)
    torch.testing.assert_close(loss.queue, before)  # no enqueue outside training
    with pytest.raises(ValueError, match="queue 3"):
        loss(_randn(4, 5), _randn(4, 5))


def test_cosine_queue_loss_gradient_and_weights() -> None:
    pred, target = _randn(4, 3, seed=13).requires_grad_(True), _randn(4, 3, seed=14)
    only_cos = CosineQueueLoss(dim=3, queue_size=0, contrastive_weight=0.0)
    value = only_cos(pred, target)
    torch.testing.assert_close(value, 1 - F.cosine_similarity(pred, target, dim=1).mean())
    value.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    learn = CosineQueueLoss(dim=3, queue_size=8, learnable=True)
    learn(pred, target).backward()
    assert learn.logit_scale.grad is not None and learn.logit_scale.grad.abs() > 1e-6
    assert not CosineQueueLoss(dim=3).logit_scale.requires_grad
    # A second step backpropagates through negatives that were enqueued (in place) after the first.
    learn(pred, target).backward()


# ---- two processes on gloo equal one process on the global batch --------------------------------------------------

GLOBAL_B = 8
QUEUE_STEPS = 3


def _global_inputs() -> dict[str, Tensor]:
    """A fixed global batch; each rank takes its slice of the rows of every tensor."""
    group = torch.tensor([0, 1, 1, 2, 3, 4, 5, 5])  # rows 1 and 2 (same rank), 6 and 7 share a group
    return {
        "a": F.normalize(_randn(GLOBAL_B, 6, seed=20), dim=1), "b": F.normalize(_randn(GLOBAL_B, 6, seed=21), dim=1),
        "x": _randn(GLOBAL_B, 6, seed=22), "y": _randn(2 * GLOBAL_B, 6, seed=23),  # two captions per image
        "x_ids": group, "y_ids": group.repeat_interleave(2),
        "pred": _randn(QUEUE_STEPS, GLOBAL_B, 6, seed=24), "target": _randn(QUEUE_STEPS, GLOBAL_B, 6, seed=25),
    }


def _backward(loss_fn: nn.Module, value: Tensor, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
    value.backward()
    out = {"loss": value.detach()}
    out.update({f"grad_{k}": v.grad.clone() for k, v in inputs.items() if v.grad is not None})
    out.update({f"param_{k}": p.grad.clone() for k, p in loss_fn.named_parameters() if p.grad is not None})
    return out


def _run_all(rank: int, world: int) -> dict[str, dict[str, Tensor]]:
    """Every loss on this rank's rows; one process (world 1) sees the whole global batch."""
    g = _global_inputs()

    def part(name: str) -> Tensor:
        n = g[name].shape[0] // world
        return g[name][rank * n : (rank + 1) * n].clone()

    def leaf(name: str) -> Tensor:
        return part(name).requires_grad_(True)

    results: dict[str, dict[str, Tensor]] = {}
    cases: dict[str, tuple[nn.Module, Callable[[nn.Module, dict[str, Tensor]], Tensor], list[str]]] = {
        "contrastive": (ContrastiveLoss(scale=10.0, margin=0.2), lambda f, v: f(v["a"], v["b"]), ["a", "b"]),
        "info_nce": (InfoNCELoss(temperature=0.2), lambda f, v: f(v["a"], v["b"]), ["a", "b"]),
        "sigmoid_paired": (SigmoidLoss(temperature=0.3, bias=-2.0), lambda f, v: f(v["a"], v["b"]), ["a", "b"]),
    }
    for name, (fn, call, keys) in cases.items():
        inputs = {k: leaf(k) for k in keys}
        results[name] = _backward(fn, call(fn, inputs), inputs)
    sig = SigmoidLoss(temperature=0.3, bias=-2.0)
    inputs = {"x": leaf("x"), "y": leaf("y")}
    value = sig(inputs["x"], inputs["y"], x_ids=part("x_ids"), y_ids=part("y_ids"))
    results["sigmoid_groups"] = _backward(sig, value, inputs)
    queue = CosineQueueLoss(dim=6, queue_size=12, temperature=0.2, learnable=True, contrastive_weight=0.7)
    for step in range(QUEUE_STEPS):  # 8 + 8 + 8 rows through a queue of 12: the later steps see a wrapped queue
        n = GLOBAL_B // world
        pred = g["pred"][step, rank * n : (rank + 1) * n].clone().requires_grad_(True)
        target = g["target"][step, rank * n : (rank + 1) * n].clone().requires_grad_(True)
        queue.zero_grad()
        inputs = {"pred": pred, "target": target}
        results[f"queue_{step}"] = _backward(queue, queue(pred, target), inputs)
        results[f"queue_{step}"]["queue"] = queue.queue.clone()
    return results


def _worker(rank: int, world: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        torch.save(_run_all(rank, world), Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_gloo_ranks_equal_one_process(tmp_path: Path) -> None:
    world = 2
    mp.spawn(_worker, args=(world, _free_port(), str(tmp_path)), nprocs=world, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(world)]
    single = _run_all(0, 1)
    assert set(ranks[0]) == set(single)
    for case, ref in single.items():
        for key, want in ref.items():
            got = [r[case][key] for r in ranks]
            if key == "loss":
                # DDP averages over ranks: the mean of the ranks' losses is the global batch's loss.
                torch.testing.assert_close(torch.stack(got).mean(), want, msg=f"{case} {key}")
            elif key.startswith("grad_"):
                # all_gather's backward sums every rank's gradient into the rows' owner; DDP then divides by the
                # world size when it averages the parameters' gradients, so the global batch's is the sum / W.
                torch.testing.assert_close(torch.cat(got) / world, want, msg=f"{case} {key}")
            elif key.startswith("param_"):
                torch.testing.assert_close(torch.stack(got).mean(), want, msg=f"{case} {key}")
            else:  # the queue: every rank holds the same one as the single process
                for g in got:
                    torch.testing.assert_close(g, want, msg=f"{case} {key}")
    # The cases are not degenerate: gradients reach the inputs and the learnable temperatures.
    assert single["sigmoid_groups"]["param_logit_bias"].abs() > 1e-4
    assert single["queue_2"]["param_logit_scale"].abs() > 1e-6
    assert all(single[c]["grad_a"].abs().sum() > 0 for c in ("contrastive", "info_nce", "sigmoid_paired"))
