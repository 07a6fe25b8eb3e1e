"""The Python API: ``SourceTracer.from_pretrained(dir).trace(wave_or_path)`` -> which system made this audio.

The answer carries the predicted source and family, calibrated probabilities of each known source and family, the
open-set score and whether it fell below the dev-calibrated threshold (then the source is "unknown" and
``closest_source`` still names the nearest known one).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from speech.audio import SAMPLE_RATE, SILENCE_PEAK, load_audio
from speech.features import pad_waves
from speech.source_trace.calibration import Calibration
from speech.source_trace.hub import load_tracer
from speech.source_trace.model import SourceTracerNet
from speech.source_trace.report import UNKNOWN

Audio = np.ndarray | torch.Tensor | str | os.PathLike[str]


@dataclass
class Trace:
    """What the tracer says about one clip."""

    source: str
    """The predicted source system, or "unknown" below the threshold."""
    family: str
    """The predicted architecture family (from its own head; "unknown" with the source)."""
    unknown: bool
    """Whether the open-set score fell below the saved threshold."""
    closest_source: str
    """The most probable known source, even when the answer is "unknown"."""
    source_probs: dict[str, float]
    """Calibrated probabilities over the known sources."""
    family_probs: dict[str, float]
    """Calibrated probabilities over the known families."""
    score: float
    """The open-set score (higher: more like a known source)."""
    threshold: float
    """The saved threshold on it."""

    def to_row(self) -> dict[str, Any]:
        return {"source": self.source, "family": self.family, "unknown": self.unknown,
                "closest_source": self.closest_source, "score": self.score, "threshold": self.threshold,
                "source_probs": self.source_probs, "family_probs": self.family_probs}


class SourceTracer:
    """A trained tracer with its calibration; ``trace`` one clip or ``trace_batch`` several."""

    def __init__(self, net: SourceTracerNet, calibration: Calibration, device: str | torch.device = "cpu",
                 min_seconds: float = 0.3, max_seconds: float = 20.0):
        self.net, self.calibration = net.to(device).eval(), calibration
        self.device, self.min_seconds, self.max_seconds = torch.device(device), min_seconds, max_seconds
        self.sources, self.families = net.cfg.sources, net.cfg.families

    @classmethod
    def from_pretrained(cls, model_dir: str | os.PathLike[str], device: str | torch.device = "cpu",
                        **kwargs: Any) -> SourceTracer:
        """A directory written by ``experiment=source_trace`` (its ``model/``) or ``SourceTraceModule.export``."""
        net, cal, _ = load_tracer(model_dir, device)
        return cls(net, cal, device, **kwargs)

    def wave(self, audio: Audio, sample_rate: int = SAMPLE_RATE, name: str = "wave") -> np.ndarray:
        """16 kHz mono float32, checked: ``AudioError``/``ValueError`` naming the input for empty, silent, short."""
        if isinstance(audio, (str, os.PathLike)):
            wave = load_audio(Path(audio), min_seconds=self.min_seconds)
        else:
            wave = np.asarray(audio.detach().cpu() if isinstance(audio, torch.Tensor) else audio, dtype=np.float32)
            if wave.ndim != 1:
                raise ValueError(f"{name}: expected a mono wave [S], got shape {wave.shape}")
            if sample_rate != SAMPLE_RATE:
                import soxr

                wave = soxr.resample(wave, sample_rate, SAMPLE_RATE).astype(np.float32)
            if not np.isfinite(wave).all():
                raise ValueError(f"{name}: holds NaN or infinite samples")
            if len(wave) < self.min_seconds * SAMPLE_RATE:
                raise ValueError(f"{name}: too short ({len(wave) / SAMPLE_RATE:.3f} s < {self.min_seconds} s)")
            if float(np.abs(wave).max()) < SILENCE_PEAK:
                raise ValueError(f"{name}: silent (peak amplitude below {SILENCE_PEAK})")
        return wave[: int(self.max_seconds * SAMPLE_RATE)]

    @torch.no_grad()
    def trace_batch(self, waves: list[np.ndarray]) -> list[Trace]:
        """Traces of checked 16 kHz waves (see ``wave``)."""
        if not waves:
            return []
        wave, lens = pad_waves(waves)
        out = self.net(wave.to(self.device), lens.to(self.device))
        cal = self.calibration
        logits, emb = out.source_logits.float().cpu(), out.embedding.float().cpu()
        src = F.softmax(logits / cal.source_temperature, dim=-1)
        fam = F.softmax(out.family_logits.float().cpu() / cal.family_temperature, dim=-1)
        scores = cal.known_score(logits, emb)
        traces = []
        for i in range(len(waves)):
            unknown = bool(scores[i] < cal.threshold)
            best = self.sources[int(src[i].argmax())]
            traces.append(Trace(
                UNKNOWN if unknown else best, UNKNOWN if unknown else self.families[int(fam[i].argmax())], unknown,
                best, {s: round(float(p), 6) for s, p in zip(self.sources, src[i])},
                {f: round(float(p), 6) for f, p in zip(self.families, fam[i])}, float(scores[i]), cal.threshold))
        return traces

    def trace(self, audio: Audio, sample_rate: int = SAMPLE_RATE) -> Trace:
        """Trace one clip: a wave [S] at ``sample_rate`` or an audio file."""
        return self.trace_batch([self.wave(audio, sample_rate)])[0]
