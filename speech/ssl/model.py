"""The wav2vec 2.0 pretraining network: span masking, a Gumbel product quantizer and the contrastive task.

Parameter names follow transformers' ``Wav2Vec2ForPreTraining`` (``quantizer.codevectors``,
``quantizer.weight_proj``, ``project_q``, ``project_hid``), so an export is a checkpoint it can read.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from speech.encoders.wav2vec2 import Wav2Vec2Config, Wav2Vec2Encoder, lengths_mask
from speech.ssl.config import MaskConfig, SSLObjectiveConfig


def span_mask(lens: Tensor, size: int, cfg: MaskConfig, generator: torch.Generator | None = None) -> Tensor:
    """[B, size] True inside random spans of ``cfg.length`` frames, only within each utterance's ``lens[b]``.

    An utterance of ``n`` frames gets ``max(min_spans, int(prob * n / length + u))`` span starts
    (u ~ U[0, 1)), distinct and drawn uniformly; spans may overlap. Utterances shorter than a span are
    masked whole.
    """
    out = torch.zeros(len(lens), size, dtype=torch.bool)
    for b, n in enumerate(lens.tolist()):
        if n <= 0:
            continue
        span = min(cfg.length, n)
        starts_available = n - span + 1
        u = float(torch.rand((), generator=generator))
        num = min(max(cfg.min_spans, int(cfg.prob * n / cfg.length + u)), starts_available)
        starts = torch.randperm(starts_available, generator=generator)[:num]
        out[b, (starts[:, None] + torch.arange(span)).flatten()] = True
    return out.to(lens.device)


def sample_negatives(mask: Tensor, k: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Distractors for each masked frame: ``k`` other masked frames of the same utterance, with replacement.

    Frames are numbered as in ``x[mask]`` (utterance by utterance). Returns indices [N, k] into that order
    and [N] True where the utterance has at least two masked frames (the others have no distractor and
    point at themselves).
    """
    counts = mask.sum(1)  # [B]
    offsets = counts.cumsum(0) - counts  # [B]
    utt = torch.repeat_interleave(torch.arange(len(counts), device=mask.device), counts)  # [N]
    local = torch.arange(len(utt), device=mask.device) - offsets[utt]  # [N] position within its utterance
    m = counts[utt]  # [N]
    ok = m >= 2
    u = torch.rand(len(utt), k, generator=generator).to(mask.device)
    r = (u * (m - 1).clamp_min(1)[:, None]).long()  # [N, k] in [0, m - 2]
    r = r + (r >= local[:, None]).long()  # skip the positive: [0, m - 1] without ``local``
    idx = offsets[utt][:, None] + r
    return torch.where(ok[:, None], idx, (offsets[utt] + local)[:, None].expand_as(idx)), ok


def perplexity(probs: Tensor) -> Tensor:
    """Sum over groups of exp(entropy) of the frame-averaged distributions ``probs`` [N, G, V]."""
    avg = probs.float().mean(0)  # [G, V]
    return torch.exp(-(avg * torch.log(avg + 1e-7)).sum(-1)).sum()


class GumbelQuantizer(nn.Module):
    """Product quantizer: G codebooks of V entries, chosen by a straight-through Gumbel softmax."""

    def __init__(self, in_dim: int, num_groups: int, num_vars: int, codevector_dim: int):
        super().__init__()
        self.num_groups, self.num_vars = num_groups, num_vars
        self.weight_proj = nn.Linear(in_dim, num_groups * num_vars)
        nn.init.normal_(self.weight_proj.weight, std=1.0)
        nn.init.zeros_(self.weight_proj.bias)
        self.codevectors = nn.Parameter(torch.empty(1, num_groups * num_vars, codevector_dim // num_groups))
        nn.init.uniform_(self.codevectors)

    def forward(self, x: Tensor, temperature: float) -> tuple[Tensor, Tensor, Tensor]:
        """Quantized vectors [N, codevector_dim], softmax perplexity (diversity) and perplexity of the codes used."""
        n = x.shape[0]
        logits = self.weight_proj(x).float().view(n, self.num_groups, self.num_vars)  # [N, G, V]
        hard = F.one_hot(logits.argmax(-1), self.num_vars).to(logits.dtype)  # [N, G, V]
        soft_ppl, code_ppl = perplexity(logits.softmax(-1)), perplexity(hard)
        onehot = F.gumbel_softmax(logits, tau=temperature, hard=True, dim=-1) if self.training else hard
        books = self.codevectors.view(self.num_groups, self.num_vars, -1)  # [G, V, d]
        q = torch.einsum("ngv,gvd->ngd", onehot.to(books.dtype), books)  # [N, G, d]
        return q.reshape(n, -1), soft_ppl, code_ppl


class _ScaleGrad(torch.autograd.Function):
    """Identity forward, gradient times a factor backward."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: Tensor, scale: float) -> Tensor:
        ctx.scale = scale  # type: ignore[attr-defined]
        return x.view_as(x)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> tuple[Tensor, None]:
        return grad * ctx.scale, None  # type: ignore[attr-defined]


@dataclass
class SSLOutput:
    """Losses and diagnostics of one pretraining batch."""

    loss: Tensor
    """Contrastive + weighted diversity + weighted feature penalty."""
    contrastive: Tensor
    """Cross-entropy of picking the true quantized frame among the distractors."""
    diversity: Tensor
    """(GV - softmax perplexity) / GV: 0 when every codebook entry is used equally."""
    feature_penalty: Tensor
    """Mean squared conv feature."""
    accuracy: Tensor
    """Share of masked frames whose true quantized vector scores highest."""
    code_perplexity: Tensor
    """Perplexity of the argmax codes over the masked frames (between G and G*V)."""
    prob_perplexity: Tensor
    """Perplexity of the averaged softmax (what the diversity loss raises)."""
    num_masked: int
    """Masked frames that took part in the contrastive loss."""


class Wav2Vec2SSL(nn.Module):
    """Wav2vec 2.0 self-supervised pretraining (Baevski et al., 2020, arXiv:2006.11477) of a ``Wav2Vec2Encoder``.

    The transformer sees the projected conv features with masked spans replaced by the mask embedding,
    and must pick, at each masked frame, the quantized true feature among ``num_negatives`` quantized
    features of other masked frames of the same utterance.
    """

    def __init__(self, encoder: Wav2Vec2Config, objective: SSLObjectiveConfig):
        super().__init__()
        self.cfg, self.objective = encoder, objective
        self.encoder = Wav2Vec2Encoder(encoder)
        o = objective
        self.quantizer = GumbelQuantizer(encoder.conv_dims[-1], o.num_groups, o.num_vars, o.codevector_dim)
        self.project_q = nn.Linear(o.codevector_dim, o.proj_dim)
        self.project_hid = nn.Linear(encoder.d_model, o.proj_dim)
        self.temperature = o.temp_start
        """Gumbel-softmax temperature; the training loop anneals it (``SSLObjectiveConfig.temperature``)."""

    def forward(self, wave: Tensor, wave_lens: Tensor, generator: torch.Generator | None = None) -> SSLOutput:
        """The objective on a padded batch of 16 kHz waveforms [B, S]; ``generator`` fixes masks and distractors."""
        o = self.objective
        feats, lens = self.encoder.extract_features(wave, wave_lens)  # [B, T, C]
        valid = lengths_mask(lens, feats.shape[1])  # [B, T]
        if self.training and o.feature_grad_mult != 1.0:
            feats = _ScaleGrad.apply(feats, o.feature_grad_mult)
        # After the gradient scaling, as in fairseq: the penalty's gradient is scaled too, else it dominates the
        # conv stack's small contrastive gradient and drives the features to zero (and the codebook to collapse).
        penalty = feats.float().pow(2)[valid].mean() if bool(valid.any()) else feats.sum() * 0.0
        x, normed = self.encoder.project(feats)  # [B, T, D], [B, T, C]
        mask = span_mask(lens, feats.shape[1], o.mask, generator)  # [B, T]
        ctx = self.encoder.contextualize(self.encoder.apply_mask(x, mask), lens)  # [B, T, D]

        c = self.project_hid(ctx[mask])  # [N, P]
        q, prob_ppl, code_ppl = self.quantizer(normed[mask], self.temperature)  # [N, Dq]
        q = self.project_q(q)  # [N, P]
        neg_idx, ok = sample_negatives(mask, o.num_negatives, generator)  # [N, K], [N]
        negs = q[neg_idx]  # [N, K, P]
        cands = torch.cat([q[:, None], negs], 1)  # [N, 1 + K, P]
        logits = F.cosine_similarity(c[:, None].float(), cands.float(), dim=-1) / o.logit_temp  # [N, 1 + K]
        # Unlike fairseq, a distractor with the target's code is kept, not set to -inf: with small codebooks
        # that rule made a collapsed codebook (one code per group) the optimum, with zero contrastive loss.
        logits = logits[ok]
        if len(logits):
            contrastive = F.cross_entropy(logits, logits.new_zeros(len(logits), dtype=torch.long))
            accuracy = (logits[:, 0] > logits[:, 1:].max(-1).values).float().mean()  # ties count as wrong
        else:
            contrastive, accuracy = c.sum() * 0.0 + q.sum() * 0.0, c.new_zeros(())
        gv = o.num_groups * o.num_vars
        diversity = (gv - prob_ppl) / gv
        loss = contrastive + o.diversity_weight * diversity + o.feature_penalty * penalty
        return SSLOutput(loss, contrastive.detach(), diversity.detach(), penalty.detach(), accuracy.detach(),
                         code_ppl.detach(), prob_ppl.detach(), int(ok.sum()))
