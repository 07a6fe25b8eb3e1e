"""Self-supervised pretraining of wav2vec2 encoders: the objective's settings and named sizes."""

from __future__ import annotations

from dataclasses import dataclass, field

from speech.encoders.wav2vec2 import Wav2Vec2Config, wav2vec2_base, wav2vec2_tiny


@dataclass
class MaskConfig:
    """Span masking of the projected features (Baevski et al., 2020, sec. 3.1)."""

    prob: float = 0.65
    """Share of frames chosen as span starts, times ``length`` (overlaps make the covered share lower, ~0.5)."""
    length: int = 10
    """Frames in each span."""
    min_spans: int = 2
    """Fewest spans per utterance (so there is always a distractor)."""


@dataclass
class SSLObjectiveConfig:
    """The wav2vec 2.0 contrastive task: quantizer, distractors and loss weights."""

    mask: MaskConfig = field(default_factory=MaskConfig)
    """Where the transformer's input is replaced by the mask embedding."""
    num_groups: int = 2
    """Codebooks G of the product quantizer."""
    num_vars: int = 320
    """Entries V in each codebook."""
    codevector_dim: int = 256
    """Width of a quantized vector (all groups concatenated); ``num_groups`` must divide it."""
    proj_dim: int = 256
    """Width of the space where context and quantized vectors are compared."""
    num_negatives: int = 100
    """Distractors K per masked frame, drawn from other masked frames of the same utterance."""
    logit_temp: float = 0.1
    """Temperature kappa of the cosine-similarity logits."""
    diversity_weight: float = 0.1
    """Weight alpha of the codebook diversity loss."""
    feature_penalty: float = 10.0
    """Weight of the L2 penalty on the conv features."""
    feature_grad_mult: float = 0.1
    """Scale of the gradient that reaches the conv feature extractor (1.0: unscaled)."""
    temp_start: float = 2.0
    """Gumbel-softmax temperature at step 0."""
    temp_end: float = 0.5
    """Lowest Gumbel-softmax temperature."""
    temp_decay: float = 0.999995
    """Per-step factor of the temperature until it reaches ``temp_end``."""

    def __post_init__(self) -> None:
        if isinstance(self.mask, dict):
            self.mask = MaskConfig(**self.mask)
        if self.codevector_dim % self.num_groups:
            raise ValueError(f"codevector_dim {self.codevector_dim} is not divisible by num_groups {self.num_groups}")
        if self.num_negatives < 1 or self.mask.min_spans < 1 or self.mask.length < 1:
            raise ValueError("num_negatives, mask.min_spans and mask.length must be at least 1")
        if not 0.0 <= self.mask.prob <= 1.0:
            raise ValueError(f"mask.prob must lie in [0, 1], got {self.mask.prob}")

    def temperature(self, step: int) -> float:
        """The annealed Gumbel-softmax temperature after ``step`` optimiser steps."""
        return max(self.temp_start * self.temp_decay**step, self.temp_end)


def ssl_objective(**overrides: object) -> SSLObjectiveConfig:
    """An objective with explicit overrides (defaults: wav2vec2-base's, Baevski et al., 2020)."""
    return SSLObjectiveConfig(**overrides)  # type: ignore[arg-type]


def ssl_objective_tiny(**overrides: object) -> SSLObjectiveConfig:
    """Smaller codebooks and fewer distractors for ``wav2vec2_tiny`` and CPU runs of a few thousand steps.

    A lighter feature penalty and a heavier diversity loss than base's: on the generated corpus, base's
    weights (10 and 0.1) collapsed the codebooks to one entry a group within 60 steps; these kept 60-80
    entries in use over 300 steps."""
    return ssl_objective(**{"num_vars": 64, "codevector_dim": 128, "proj_dim": 128, "num_negatives": 30,
                            "temp_decay": 0.999, "feature_penalty": 1.0, "diversity_weight": 0.5, **overrides})


__all__ = ["MaskConfig", "SSLObjectiveConfig", "Wav2Vec2Config", "ssl_objective", "ssl_objective_tiny",
           "wav2vec2_base", "wav2vec2_tiny"]
