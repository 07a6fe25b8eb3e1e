"""Losses shared by the families: in-batch contrastive (translation ranking, CLIP InfoNCE), multi-positive sigmoid
(SigLIP / FLAME) and cosine regression with queued negatives (SONAR-SLT).

All are rank-aware in the manner of open_clip: under DDP each rank gathers the other ranks' embeddings (gradients flow
back to the rank that made them) and scores its own rows against the global batch. Each rank's loss is a mean over its
own rows, so the mean over ranks (what DDP's gradient averaging optimises) equals the loss of the whole global batch.
Ranks must hold equally many rows (``all_gather`` needs equal shapes), as Lightning's distributed samplers give.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn


def _world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class _GatherRows(torch.autograd.Function):
    """``all_gather`` of rows whose backward hands each rank the summed gradient of its own rows."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: Tensor) -> Tensor:
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> Tensor:
        # Every rank's loss depends on every rank's rows: sum their gradients, keep this rank's slice. An all_reduce
        # rather than torch.distributed.nn's all_gather (deprecated; on gloo its backward is W scatters).
        grad = grad.contiguous()
        dist.all_reduce(grad)
        n = grad.shape[0] // dist.get_world_size()
        return grad[dist.get_rank() * n : (dist.get_rank() + 1) * n]


def gather_with_grad(x: Tensor) -> tuple[Tensor, int]:
    """All ranks' rows concatenated (gradients flow to this rank's rows) and this rank's row offset."""
    if _world_size() == 1:
        return x, 0
    return _GatherRows.apply(x), dist.get_rank() * x.shape[0]


def gather_no_grad(x: Tensor) -> Tensor:
    """All ranks' rows concatenated, detached (ids, queue entries)."""
    if _world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def _log_scale(temperature: float, learnable: bool) -> nn.Parameter:
    """CLIP's parameterisation: the log of the inverse temperature, so the optimiser works on a log scale."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    return nn.Parameter(torch.tensor(math.log(1.0 / temperature)), requires_grad=learnable)


def _clamped_scale(log_scale: Tensor, max_scale: float) -> Tensor:
    # CLIP clamps the logit scale to [1, 100] so the logits can't grow without bound; clamping here rather than after
    # the optimiser step keeps the cap in force whatever the training loop does.
    return log_scale.clamp(0.0, math.log(max_scale)).exp()


class _ScaledLoss(nn.Module):
    """A loss over similarities times a learnable, clamped inverse temperature (``logit_scale``)."""

    def __init__(self, temperature: float, learnable: bool, max_scale: float, normalize: bool, gather: bool):
        super().__init__()
        self.logit_scale = _log_scale(temperature, learnable)
        self.max_scale = max_scale
        self.normalize = normalize
        self.gather = gather

    @property
    def scale(self) -> Tensor:
        """The clamped multiplier of the cosine similarities (1 / temperature)."""
        return _clamped_scale(self.logit_scale, self.max_scale)


def _check_pairs(a: Tensor, b: Tensor) -> None:
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"paired embeddings must have equal [B, D] shapes, got {tuple(a.shape)} and {tuple(b.shape)}")


def translation_ranking_loss(
    a: Tensor, b: Tensor, scale: float | Tensor = 20.0, margin: float = 0.3, bidirectional: bool = True,
    offset: int = 0, negatives: Tensor | None = None,
) -> Tensor:
    """Additive-margin softmax over in-batch negatives (Yang et al., 2019; LaBSE, Feng et al., 2022).

    ``a [B, D]`` are anchors and ``b [N, D]`` candidates (N >= B; row ``offset + i`` of ``b`` is the translation of
    row ``i`` of ``a``). Both are expected L2-normalised, so logits are ``scale * (cos - margin on the positive)``.
    With ``bidirectional`` the loss from ``b``'s side (candidates ranking anchors) is averaged in. ``negatives [B]``
    is, for the ``a``-to-``b`` direction only, the log-sum-exp of each anchor's logits over extra candidates of its
    own (``LanguageQueue.logsumexp``; ``-inf`` for none), added to its softmax's denominator.
    """
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected [B, D] and [N, D] embeddings, got {tuple(a.shape)} and {tuple(b.shape)}")
    sim = a @ b.T  # [B, N]
    target = torch.arange(a.shape[0], device=a.device) + offset  # [B]
    positive = F.one_hot(target, sim.shape[1]).to(sim.dtype)  # [B, N]
    logits = scale * (sim - margin * positive)
    if negatives is None:
        loss = F.cross_entropy(logits, target)
    else:  # cross-entropy over [in-batch, extra] logits, without building the extra ones' [B, K]
        denominator = torch.logaddexp(torch.logsumexp(logits.float(), dim=1), negatives)
        loss = (denominator - logits.float().gather(1, target[:, None])[:, 0]).mean()
    if not bidirectional:
        return loss
    # b -> a: each candidate of this rank ranks this rank's anchors.
    local = logits[:, offset : offset + a.shape[0]].T  # [B, B]
    return 0.5 * (loss + F.cross_entropy(local, torch.arange(a.shape[0], device=a.device)))


def text_keys(ids: Tensor, mask: Tensor) -> Tensor:
    """One int64 hash per row of token ids ``[B, T]`` (padding ignored): equal texts get equal keys."""
    gen = torch.Generator().manual_seed(0x5EED)
    weights = torch.randint(1, 2**62, (ids.shape[1],), generator=gen, dtype=torch.long).to(ids.device)  # [T]
    return ((ids.long() + 1) * mask.long() * weights).sum(1)  # [B]; int64 overflow wraps, which a hash may


def _rows_by_lang(langs: Sequence[str], device: torch.device) -> list[tuple[str, Tensor]]:
    """(language, its row indices) for each language of ``langs``, in sorted order."""
    rows: dict[str, list[int]] = {}
    for i, lang in enumerate(langs):
        rows.setdefault(lang, []).append(i)
    return [(lang, torch.tensor(rows[lang], device=device)) for lang in sorted(rows)]


class LanguageQueue:
    """A FIFO of past embeddings per language, with their texts' keys: same-language negatives for the ranking loss.

    In-batch negatives of a multilingual batch are mostly in other languages than the positive, while retrieval picks
    among candidates of one language. The queue gives each anchor the last ``size`` embeddings of its positive's
    language as extra negatives (detached, as MoCo's and XBM's queues are; Wang et al., 2020), leaving out queued rows
    whose text equals the positive's (the same message from another source). Under DDP each rank keeps its own.
    """

    def __init__(self, size: int):
        if size <= 0:
            raise ValueError(f"a language queue needs size > 0, got {size}")
        self.size = size
        self.emb: dict[str, Tensor] = {}
        self.keys: dict[str, Tensor] = {}

    def logsumexp(self, x: Tensor, langs: Sequence[str], positive_keys: Tensor, scale: float | Tensor) -> Tensor:
        """``[B]``: log-sum-exp of ``scale`` times the cosines of ``x [B, D]`` to the queued rows of each row's language
        ``langs[i]``, leaving out queued rows whose key is ``positive_keys[i]`` (-inf for an empty queue; ~-1e30 where
        every queued row is left out)."""
        out = x.new_full((x.shape[0],), float("-inf"), dtype=torch.float32)
        for lang, rows in _rows_by_lang(langs, x.device):
            if lang in self.emb:
                keys = self.keys[lang]
                # Few rows a language: CPU bf16 products would cost more than they save.
                with torch.autocast(x.device.type, enabled=False):
                    sim = scale * (x[rows].float() @ self.emb[lang].T)  # [r, n]
                # A huge finite logit, not -inf: a row with every queued entry left out must not get NaN gradients.
                sim = sim.masked_fill(keys[None, :] == positive_keys[rows][:, None], -1e30)
                out = out.index_put((rows,), torch.logsumexp(sim, dim=1))
        return out

    @torch.no_grad()
    def push(self, x: Tensor, langs: Sequence[str], keys: Tensor) -> None:
        """Queue ``x [B, D]`` (detached) under ``langs``, newest first, dropping the oldest beyond ``size``."""
        for lang, rows in _rows_by_lang(langs, x.device):
            old_emb = self.emb.get(lang, x.new_zeros(0, x.shape[1], dtype=torch.float32))
            old_keys = self.keys.get(lang, keys.new_zeros(0))
            self.emb[lang] = torch.cat([x[rows].detach().float(), old_emb])[: self.size]
            self.keys[lang] = torch.cat([keys[rows], old_keys])[: self.size]


class ContrastiveLoss(nn.Module):
    """Bidirectional translation-ranking loss with additive margin, over the global batch under DDP.

    With ``lang_queue > 0`` each anchor also ranks its positive above the last ``lang_queue`` embeddings of the
    positive's language (``LanguageQueue``); ``forward`` then needs each side's languages and text keys.
    """

    def __init__(self, scale: float = 20.0, margin: float = 0.3, bidirectional: bool = True, gather: bool = True,
                 lang_queue: int = 0):
        super().__init__()
        self.scale = scale
        self.margin = margin
        self.bidirectional = bidirectional
        self.gather = gather
        self.queue = LanguageQueue(lang_queue) if lang_queue else None

    def forward(self, a: Tensor, b: Tensor, langs: tuple[Sequence[str], Sequence[str]] | None = None,
                keys: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """Loss of paired embeddings ``a [B, D]`` and ``b [B, D]`` (row i of each is one pair); ``langs`` and ``keys``
        (``text_keys``) of both sides are needed with a language queue and ignored without one."""
        if a.shape != b.shape:
            raise ValueError(f"paired embeddings must have equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
        if self.queue is None:
            neg_a = neg_b = None
        elif langs is None or keys is None:
            raise ValueError("a loss with a language queue needs the languages and text keys of both sides")
        else:
            neg_a = self.queue.logsumexp(a, langs[1], keys[1], self.scale)  # a's anchors against b's language
            neg_b = self.queue.logsumexp(b, langs[0], keys[0], self.scale)
            if self.training:
                self.queue.push(a, langs[0], keys[0])
                self.queue.push(b, langs[1], keys[1])
        if not self.gather and neg_a is None:
            return translation_ranking_loss(a, b, self.scale, self.margin, self.bidirectional)
        all_b, offset = gather_with_grad(b) if self.gather else (b, 0)
        loss = translation_ranking_loss(a, all_b, self.scale, self.margin, False, offset, neg_a)
        if not self.bidirectional:
            return loss
        all_a, _ = gather_with_grad(a) if self.gather else (a, 0)
        reverse = translation_ranking_loss(b, all_a, self.scale, self.margin, False, offset, neg_b)
        return 0.5 * (loss + reverse)


def info_nce(anchors: Tensor, candidates: Tensor, scale: float | Tensor, offset: int = 0,
             exclude: Tensor | None = None) -> Tensor:
    """Mean cross-entropy of ``scale * anchors [B, D] @ candidates [N, D].T``; anchor i's positive is ``offset + i``.
    ``exclude [B, B]`` (bool): where set, candidate ``offset + j`` is left out of anchor i's softmax (never the
    positive)."""
    logits = scale * anchors @ candidates.T  # [B, N]
    target = torch.arange(anchors.shape[0], device=anchors.device) + offset  # [B]
    if exclude is not None:
        rows = len(anchors)
        off = exclude.to(logits.device, torch.bool) & ~torch.eye(rows, dtype=torch.bool, device=logits.device)
        if bool(off.any()):
            block = torch.zeros_like(logits, dtype=torch.bool)
            block[:, offset : offset + rows] = off
            logits = logits.masked_fill(block, float("-inf"))
    return F.cross_entropy(logits, target)


class InfoNCELoss(_ScaledLoss):
    """Symmetric InfoNCE with a learnable temperature (CLIP; Radford et al., 2021), over the global batch under DDP.

    Args:
        temperature: initial softmax temperature (CLIP: 0.07); the parameter is ``logit_scale = log(1 / temperature)``.
        learnable: train the temperature.
        max_scale: cap on ``exp(logit_scale)`` (CLIP: 100).
        normalize: L2-normalise the embeddings first (cosine similarities).
        gather: under DDP, use the other ranks' rows as negatives.
    """

    def __init__(self, temperature: float = 0.07, learnable: bool = True, max_scale: float = 100.0,
                 normalize: bool = True, gather: bool = True):
        super().__init__(temperature, learnable, max_scale, normalize, gather)

    def forward(self, a: Tensor, b: Tensor, exclude: Tensor | None = None) -> Tensor:
        """Loss of paired embeddings ``a [B, D]`` and ``b [B, D]`` (row i of each is one pair, e.g. image and text).

        ``exclude [B, B]`` (bool) marks pairs ``(a_i, b_j)`` that also match, e.g. a description that fits two tunes:
        they are left out of both softmaxes instead of being pushed apart. Under DDP it covers this rank's rows;
        the other ranks' rows stay negatives."""
        _check_pairs(a, b)
        if self.normalize:
            a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
        scale = self.scale
        back = None if exclude is None else exclude.T
        if not self.gather:
            return 0.5 * (info_nce(a, b, scale, 0, exclude) + info_nce(b, a, scale, 0, back))
        all_a, offset = gather_with_grad(a)  # [W*B, D]
        all_b, _ = gather_with_grad(b)  # [W*B, D]
        # open_clip's local loss: this rank's rows against every column, in both directions.
        return 0.5 * (info_nce(a, all_b, scale, offset, exclude) + info_nce(b, all_a, scale, offset, back))


class SigmoidLoss(_ScaledLoss):
    """Pairwise sigmoid loss (SigLIP; Zhai et al., 2023) with any number of positives per row, as FLAME uses.

    Every (row, column) pair is a binary classification: ``-log sigmoid(±(scale * cos + bias))`` with + for positives,
    summed over the columns and averaged over the rows. With one positive per row this is SigLIP's loss.

    Args:
        temperature: initial temperature (SigLIP: 0.1, i.e. ``exp(logit_scale) = 10``).
        bias: initial logit bias (SigLIP: -10, so that the many negatives start near their target).
        learnable: train the temperature and the bias.
        max_scale: cap on ``exp(logit_scale)``.
        normalize: L2-normalise the embeddings first.
        gather: under DDP, score this rank's rows against every rank's columns.
    """

    def __init__(self, temperature: float = 0.1, bias: float = -10.0, learnable: bool = True, max_scale: float = 100.0,
                 normalize: bool = True, gather: bool = True):
        super().__init__(temperature, learnable, max_scale, normalize, gather)
        self.logit_bias = nn.Parameter(torch.tensor(float(bias)), requires_grad=learnable)

    def forward(self, x: Tensor, y: Tensor, positives: Tensor | None = None, x_ids: Tensor | None = None,
                y_ids: Tensor | None = None) -> Tensor:
        """Loss of rows ``x [B, D]`` against columns ``y [M, D]``.

        Positives come from one of: ``positives``, a bool ``[B, N]`` over this rank's rows and all ranks' columns
        (``N = world_size * M``, rank order); ``x_ids [B]`` and ``y_ids [M]``, group ids that are equal for positives
        (they must mean the same on every rank, e.g. dataset indices); or neither, when row i pairs with column i.
        """
        if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
            raise ValueError(f"expected [B, D] and [M, D] embeddings, got {tuple(x.shape)} and {tuple(y.shape)}")
        if self.normalize:
            x, y = F.normalize(x, dim=-1), F.normalize(y, dim=-1)
        all_y, offset = gather_with_grad(y) if self.gather else (y, 0)  # [N, D]
        logits = self.scale * x @ all_y.T + self.logit_bias  # [B, N]
        pos = self._positives(x, y, logits.shape, offset, positives, x_ids, y_ids)  # [B, N] bool
        signs = pos.to(logits.dtype) * 2 - 1  # +1 positives, -1 negatives
        return -F.logsigmoid(signs * logits).sum() / x.shape[0]

    def _positives(self, x: Tensor, y: Tensor, shape: torch.Size, offset: int, positives: Tensor | None,
                   x_ids: Tensor | None, y_ids: Tensor | None) -> Tensor:
        if positives is not None:
            if x_ids is not None or y_ids is not None:
                raise ValueError("give either positives or x_ids/y_ids, not both")
            if positives.shape != shape:
                raise ValueError(f"positives must be [B, N] = {tuple(shape)}, got {tuple(positives.shape)}")
            return positives.bool()
        if (x_ids is None) != (y_ids is None):
            raise ValueError("x_ids and y_ids go together")
        if x_ids is not None and y_ids is not None:
            if x_ids.shape != x.shape[:1] or y_ids.shape != y.shape[:1]:
                raise ValueError(f"ids must be [B] and [M] = {x.shape[0]} and {y.shape[0]}, "
                                 f"got {tuple(x_ids.shape)} and {tuple(y_ids.shape)}")
            all_ids = gather_no_grad(y_ids) if self.gather else y_ids  # [N]
            return x_ids[:, None] == all_ids[None, :]
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"without positives or ids, rows and columns pair up: got {x.shape[0]} and {y.shape[0]}")
        rows = torch.arange(x.shape[0], device=x.device)
        return F.one_hot(rows + offset, shape[1]).bool()


class CosineQueueLoss(_ScaledLoss):
    """Cosine regression onto target embeddings plus InfoNCE against the other targets and a FIFO queue of past ones.

    ``cosine_weight * mean(1 - cos(pred, target)) + contrastive_weight * InfoNCE``, where each prediction must pick its
    own target among the global batch's targets and the last ``queue_size`` targets (SONAR-SLT regresses sign video
    onto SONAR sentence embeddings this way). The queue is a buffer, filled with the global batch's targets after
    each training step (detached), so every rank holds the same queue.

    Args:
        dim: embedding size (of the queue).
        queue_size: number of past targets kept as extra negatives; 0 for in-batch negatives only.
        cosine_weight: weight of the cosine term.
        contrastive_weight: weight of the InfoNCE term.
        temperature: softmax temperature of the InfoNCE term.
        learnable: train the temperature.
        max_scale: cap on ``1 / temperature``.
        gather: under DDP, use the other ranks' targets as negatives.
    """

    queue: Tensor
    queue_len: Tensor
    queue_ptr: Tensor

    def __init__(self, dim: int, queue_size: int = 4096, cosine_weight: float = 1.0, contrastive_weight: float = 1.0,
                 temperature: float = 0.05, learnable: bool = False, max_scale: float = 100.0, gather: bool = True):
        if queue_size < 0:
            raise ValueError(f"queue_size must be >= 0, got {queue_size}")
        # The predictions are normalised for the cosine term anyway (see components).
        super().__init__(temperature, learnable, max_scale, normalize=True, gather=gather)
        self.cosine_weight = cosine_weight
        self.contrastive_weight = contrastive_weight
        self.register_buffer("queue", torch.zeros(queue_size, dim))  # [Q, D], unit rows once filled
        self.register_buffer("queue_len", torch.zeros((), dtype=torch.long))  # valid rows (the queue starts empty)
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))  # next row to overwrite

    def components(self, pred: Tensor, target: Tensor) -> dict[str, Tensor]:
        """The unweighted ``cosine`` and ``contrastive`` terms for ``pred [B, D]`` and ``target [B, D]``."""
        cosine, contrastive, _ = self._terms(pred, target)
        return {"cosine": cosine, "contrastive": contrastive}

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Weighted loss of predictions ``pred [B, D]`` against targets ``target [B, D]``; enqueues when training."""
        cosine, contrastive, all_targets = self._terms(pred, target)
        if self.training:
            self.enqueue(all_targets)
        return self.cosine_weight * cosine + self.contrastive_weight * contrastive

    def _terms(self, pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        _check_pairs(pred, target)
        if pred.shape[1] != self.queue.shape[1]:
            raise ValueError(f"embeddings have size {pred.shape[1]}, the queue {self.queue.shape[1]}")
        p, t = F.normalize(pred, dim=-1), F.normalize(target, dim=-1)
        cosine = (1 - (p * t).sum(-1)).mean()
        all_t, offset = gather_with_grad(t) if self.gather else (t, 0)  # [W*B, D]
        # A copy: enqueue() overwrites queue rows in place after this, while autograd still holds the negatives.
        past = self.queue[: int(self.queue_len)].clone().to(t.dtype)  # [L, D]
        contrastive = info_nce(p, torch.cat([all_t, past]), self.scale, offset)
        return cosine, contrastive, all_t.detach()

    @torch.no_grad()
    def enqueue(self, targets: Tensor) -> None:
        """Push L2-normalised ``targets [N, D]`` into the FIFO, overwriting the oldest rows once full."""
        size = self.queue.shape[0]
        if size == 0:
            return
        new = F.normalize(targets.detach(), dim=-1)[-size:].to(self.queue.dtype)  # [n, D], n <= Q
        rows = (self.queue_ptr + torch.arange(new.shape[0], device=self.queue.device)) % size
        self.queue[rows] = new
        self.queue_ptr.copy_((self.queue_ptr + new.shape[0]) % size)
        self.queue_len.copy_((self.queue_len + new.shape[0]).clamp(max=size))
