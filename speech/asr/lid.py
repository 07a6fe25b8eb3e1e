"""Spoken language ID on a frozen CTC encoder: attentive statistics pooling and a small MLP over known languages."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor, nn

from common import hub
from common.layers import Dropout

WEIGHTS, META = "lid.safetensors", "lid.json"
"""Files of a LID head inside a model directory."""


@dataclass
class LIDConfig:
    """Architecture of a language-ID head over encoder frames."""

    d_model: int
    """Width of the encoder frames it reads."""
    langs: list[str]
    """Languages it tells apart, in output order."""
    attn_dim: int = 64
    """Hidden size of the frame-attention scorer."""
    hidden: int = 256
    """Hidden size of the classifier MLP."""
    dropout: float = 0.2
    """Dropout on the pooled statistics during training."""


def frame_mask(lens: Tensor, size: int) -> Tensor:
    """[B, size] True on real frames."""
    return torch.arange(size, device=lens.device)[None] < lens[:, None]


class LIDHead(nn.Module):
    """Attentive statistics pooling (Okabe et al., 2018) of encoder frames, then an MLP to language logits."""

    def __init__(self, cfg: LIDConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.norm = nn.LayerNorm(d)
        self.attn = nn.Sequential(nn.Linear(d, cfg.attn_dim), nn.Tanh(), nn.Linear(cfg.attn_dim, 1))
        self.mlp = nn.Sequential(Dropout(cfg.dropout), nn.Linear(2 * d, cfg.hidden), nn.GELU(),
                                 Dropout(cfg.dropout), nn.Linear(cfg.hidden, len(cfg.langs)))

    def pool(self, hidden: Tensor, lens: Tensor) -> Tensor:
        """Attention-weighted mean and standard deviation of the real frames: [B, T, D] -> [B, 2D]."""
        x = self.norm(hidden.float())
        mask = frame_mask(lens.to(x.device), x.shape[1])  # [B, T]
        w = self.attn(x).squeeze(-1).masked_fill(~mask, float("-inf"))  # [B, T]
        w = torch.nan_to_num(w.softmax(-1))[..., None]  # [B, T, 1]; an empty item pools to zeros
        mean = (w * x).sum(1)  # [B, D]
        var = (w * (x - mean[:, None]) ** 2).sum(1)
        return torch.cat([mean, var.clamp_min(1e-6).sqrt()], -1)

    def forward(self, hidden: Tensor, lens: Tensor) -> Tensor:
        """Language logits [B, L] of encoder frames [B, T, D] with lengths [B]."""
        return self.mlp(self.pool(hidden, lens))


LID_LAYOUT = hub.Layout(config=META, weights=WEIGHTS)
"""A LID head lives beside its model's own files, in ``lid.json`` and ``lid.safetensors``."""
MODEL_TYPE = "lid_head"


@hub.register_model_type(MODEL_TYPE)
def build_lid(config: dict[str, Any]) -> LIDHead:
    fields = LIDConfig.__dataclass_fields__
    return LIDHead(LIDConfig(**{k: v for k, v in config.items() if k in fields}))


def save_lid(head: LIDHead, model_dir: str | os.PathLike[str], **meta: Any) -> Path:
    """Write ``lid.safetensors`` and ``lid.json`` (config, language list, ``meta``) atomically."""
    hub.save_pretrained(head, model_dir, model_type=MODEL_TYPE, layout=LID_LAYOUT, **meta)
    return Path(model_dir) / WEIGHTS


def has_lid(model_dir: str | os.PathLike[str]) -> bool:
    """Whether a model directory holds a LID head."""
    return (Path(model_dir) / WEIGHTS).is_file() and (Path(model_dir) / META).is_file()


def load_lid(model_dir: str | os.PathLike[str], device: str | torch.device = "cpu") -> LIDHead:
    """The LID head saved in a model directory."""
    d = Path(model_dir)
    if not has_lid(d):
        raise FileNotFoundError(f"{d}: no language-ID head ({WEIGHTS} and {META}); "
                                f"train one with python scripts/build_lid.py model={d} train=... dev=...")
    return cast(LIDHead, hub.load_pretrained(d, device, layout=LID_LAYOUT, expect=MODEL_TYPE).model)


@contextmanager
def capture_hidden(model: nn.Module) -> Iterator[list[Tensor]]:
    """Collect the input of ``model.head`` (the encoder frames [B, T, D]) on each forward inside the block."""
    head = getattr(model, "head", None)
    if not isinstance(head, nn.Module):
        raise TypeError(f"{type(model).__name__}: language ID needs a CTC model with a .head on its encoder")
    seen: list[Tensor] = []
    handle = head.register_forward_pre_hook(lambda _m, inputs: seen.append(inputs[0].detach()))
    try:
        yield seen
    finally:
        handle.remove()


@dataclass
class SegmentConfig:
    """How a long input gets a language per segment: the head on sliding windows, then Viterbi smoothing."""

    window_seconds: float = 2.0
    """Encoder frames pooled per window."""
    hop_seconds: float = 1.0
    """Step between windows."""
    reencode: bool = True
    """Run the encoder on each window's own audio (inputs up to one long-form window): the encoder's attention
    over the whole input blurs the frames of two languages into each other. False pools slices of its frames."""
    switch_penalty: float = 4.0
    """Log-score cost of changing language between two windows; higher gives fewer, longer runs."""
    min_seconds: float = 4.0
    """Inputs shorter than this get no segments (the whole-file language covers them)."""


def window_log_probs(head: LIDHead, hidden: Tensor, valid: Tensor, frame_seconds: float,
                     cfg: SegmentConfig, batch: int = 256) -> tuple[Tensor, Tensor]:
    """Language log-probs [W, L] of sliding windows over one input's frames [T, D] and their frame starts [W].

    Frames where ``valid`` [T] is False (pauses between long-form windows) are left out of the pooling.
    """
    t = hidden.shape[0]
    win = max(1, round(cfg.window_seconds / frame_seconds))
    hop = max(1, round(cfg.hop_seconds / frame_seconds))
    starts = torch.arange(0, max(t - win, 0) + 1, hop)
    if t > win and int(starts[-1]) + win < t:
        starts = torch.cat([starts, torch.tensor([t - win])])
    out = []
    for s in range(0, len(starts), batch):
        st = starts[s : s + batch]
        idx = (st[:, None] + torch.arange(min(win, t))[None]).clamp_max(t - 1)  # [w, win]
        keep = valid[idx]  # [w, win]
        order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)  # real frames first
        frames = hidden[idx.gather(1, order)]  # [w, win, D]
        out.append(head(frames, keep.sum(1)).float().log_softmax(-1))
    return torch.cat(out), starts


def viterbi_runs(logp: Tensor, penalty: float) -> list[int]:
    """Best language per window [W] under scores [W, L] minus ``penalty`` per change of language."""
    w, n = logp.shape
    score = logp[0].clone()
    back = torch.zeros(w, n, dtype=torch.long)
    for i in range(1, w):
        stay = score
        best_prev = int(score.argmax())
        switch = score[best_prev] - penalty
        take_switch = switch > stay  # [L]
        back[i] = torch.where(take_switch, torch.full((n,), best_prev), torch.arange(n))
        score = torch.maximum(stay, switch) + logp[i]
    path = [int(score.argmax())]
    for i in range(w - 1, 0, -1):
        path.append(int(back[i, path[-1]]))
    return path[::-1]


def segments(head: LIDHead, hidden: Tensor, valid: Tensor, frame_seconds: float, cfg: SegmentConfig,
             duration: float | None = None) -> list[dict[str, Any]]:
    """Runs of one language over an input's frames [T, D]: ``[{start, end, lang, confidence}]`` in seconds."""
    if hidden.shape[0] == 0:
        return []
    logp, starts = window_log_probs(head, hidden, valid, frame_seconds, cfg)
    win = min(hidden.shape[0], max(1, round(cfg.window_seconds / frame_seconds)))
    centres = ((starts.float() + win / 2) * frame_seconds).tolist()
    end = duration if duration is not None else hidden.shape[0] * frame_seconds
    return runs_of(logp, centres, end, head.cfg.langs, cfg.switch_penalty)


def runs_of(logp: Tensor, centres: list[float], end: float, langs: list[str], penalty: float
            ) -> list[dict[str, Any]]:
    """Viterbi-smoothed runs of window language log-probs [W, L] whose windows are centred at ``centres`` (s).

    A run's confidence is the mean probability of its language over its windows; boundaries fall halfway
    between the centres of the last window of one run and the first of the next.
    """
    path = viterbi_runs(logp, penalty)
    runs: list[dict[str, Any]] = []
    first = 0
    for i in range(1, len(path) + 1):
        if i < len(path) and path[i] == path[first]:
            continue
        lang = path[first]
        start = 0.0 if not runs else runs[-1]["end"]
        stop = end if i == len(path) else (centres[i - 1] + centres[i]) / 2
        conf = float(logp[first:i, lang].exp().mean())
        runs.append({"start": round(start, 3), "end": round(stop, 3), "lang": langs[lang],
                     "confidence": round(conf, 4)})
        first = i
    return runs


def scores_of(head: LIDHead, logits: Tensor) -> list[dict[str, Any]]:
    """Rows ``{lang, confidence, scores}`` of language logits [B, L]."""
    probs = logits.float().softmax(-1).cpu()
    rows = []
    for p in probs:
        best = int(p.argmax())
        rows.append({"lang": head.cfg.langs[best], "confidence": round(float(p[best]), 4),
                     "scores": {lang: round(float(x), 4) for lang, x in zip(head.cfg.langs, p)}})
    return rows


def identify_frames(head: LIDHead, hidden: Tensor, valid: Tensor | None, frame_seconds: float,
                    cfg: SegmentConfig, duration: float | None = None) -> dict[str, Any]:
    """``{lang, confidence, scores}`` of one input's frames [T, D] pooled whole, plus ``segments`` when long enough.

    ``valid`` [T] marks frames to use (None: all); the rest (pauses between long-form windows) are skipped.
    """
    hidden = hidden.float()
    valid = torch.ones(hidden.shape[0], dtype=torch.bool, device=hidden.device) if valid is None else valid
    with torch.no_grad():
        row = scores_of(head, head(hidden[valid][None], valid.sum()[None]))[0]
        seconds = duration if duration is not None else hidden.shape[0] * frame_seconds
        if seconds >= cfg.min_seconds:
            row["segments"] = segments(head, hidden, valid, frame_seconds, cfg, duration)
    return row
