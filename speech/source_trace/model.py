"""The source tracer: front-end, back-end, an utterance embedding and heads for source system and architecture family.

Closed-set classification over the known sources of a protocol; open-set scores and calibration sit on top of the
logits and embeddings (speech.source_trace.calibration). Inspired by the multilingual source-tracing systems of
MCL-MLAAD (Klein et al., 2024): LFCC or SSL features into ResNet-18, AASIST or ECAPA-TDNN.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from common.layers import Dropout
from speech.source_trace.backends import build_backend
from speech.source_trace.config import SourceTracerConfig
from speech.source_trace.frontends import Frontend

MODEL_TYPE = "source_tracer"
"""The hub's name for a source-tracer directory."""


@dataclass
class TraceOutput:
    """Raw network outputs for a batch."""

    source_logits: Tensor
    """[B, n_sources]"""
    family_logits: Tensor
    """[B, n_families]"""
    embedding: Tensor
    """[B, embed_dim], before the heads' dropout (kNN open-set scoring reads it)."""


class SourceTracerNet(nn.Module):
    """Waveforms [B, S] at 16 kHz and their lengths [B] to source and family logits and an embedding."""

    model_type = MODEL_TYPE

    def __init__(self, cfg: SourceTracerConfig):
        super().__init__()
        if not cfg.sources or not cfg.families:
            raise ValueError("a source tracer needs its known sources and families (they come from the data)")
        self.cfg = cfg
        self.frontend = Frontend(cfg.frontend)
        self.backend = build_backend(cfg.backend, self.frontend.dim, cfg.embed_dim)
        self.drop = Dropout(cfg.dropout)
        self.source_head = nn.Linear(cfg.embed_dim, len(cfg.sources))
        self.family_head = nn.Linear(cfg.embed_dim, len(cfg.families))

    def embed(self, wave: Tensor, wave_lens: Tensor) -> Tensor:
        """Utterance embeddings [B, embed_dim]."""
        feats, lens = self.frontend(wave, wave_lens)  # [B, T, F]
        return self.backend(feats, lens)

    def forward(self, wave: Tensor, wave_lens: Tensor) -> TraceOutput:
        emb = self.embed(wave, wave_lens)
        h = self.drop(emb)
        return TraceOutput(self.source_head(h), self.family_head(h), emb)


