"""Source-tracer settings: a front-end, a back-end and two heads, with named sizes as functions.

A model directory's ``config.json`` holds ``asdict(SourceTracerConfig)``; ``SourceTracerConfig.from_dict`` reads it
back, choosing each back-end's dataclass by its explicit ``kind`` key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

FRONTENDS = ("lfcc", "mfcc", "cqt", "ssl")
BACKENDS = ("resnet", "aasist", "ecapa")


@dataclass
class FrontendConfig:
    """Waveform features: LFCC, MFCC, constant-Q power or learned-weight layers of a wav2vec2 encoder."""

    kind: str = "lfcc"
    """lfcc | mfcc | cqt | ssl."""
    n_fft: int = 512
    """FFT size of the spectral front-ends (cqt sizes its own from the lowest bin)."""
    win_ms: float = 20.0
    """Analysis window (ms)."""
    hop_ms: float = 10.0
    """Frame hop (ms); the cqt hop too."""
    n_filters: int = 60
    """Linear (lfcc) or mel (mfcc) triangular filters."""
    n_coeffs: int = 20
    """Cepstral coefficients kept (lfcc, mfcc)."""
    deltas: bool = True
    """Append first and second time derivatives of the cepstra (lfcc, mfcc), as the ASVspoof baselines do."""
    fmin: float = 50.0
    """Lowest constant-Q bin (Hz)."""
    bins_per_octave: int = 12
    """Constant-Q resolution."""
    n_bins: int = 84
    """Constant-Q bins (7 octaves from fmin at 12 a octave)."""
    normalize: bool = True
    """Per-utterance mean and variance normalisation of each feature over the real frames (deaf to gain)."""
    ssl_encoder: dict[str, Any] | None = None
    """ssl: the wav2vec2 encoder's architecture (speech.encoders.wav2vec2.Wav2Vec2Config as a dict)."""
    ssl_freeze: bool = True
    """ssl: keep the encoder's weights fixed (only the layer weights and the back-end learn)."""

    def __post_init__(self) -> None:
        if self.kind not in FRONTENDS:
            raise ValueError(f"frontend.kind={self.kind!r}: choose from {list(FRONTENDS)}")


@dataclass
class ResNetConfig:
    """ResNet-18 (He et al., 2016) over a one-channel feature map [F, T], pooled by mean and deviation over time."""

    kind: str = "resnet"
    width: int = 16
    """Channels of the first stage (doubling each stage; the ImageNet model has 64)."""
    blocks: list[int] = field(default_factory=lambda: [2, 2, 2, 2])
    """Basic blocks per stage (ResNet-18: 2, 2, 2, 2)."""


@dataclass
class AasistConfig:
    """AASIST-style back-end (Jung et al., 2022): conv encoder, spectral and temporal graph attention, fused graph."""

    kind: str = "aasist"
    channels: list[int] = field(default_factory=lambda: [32, 32, 64])
    """Channels of the residual conv encoder's stages (each halves frequency and time)."""
    gat_dim: int = 64
    """Node width of the graph-attention layers."""
    pool_ratio: float = 0.5
    """Share of nodes each graph pooling keeps (top scores)."""
    temperature: float = 2.0
    """Softmax temperature of the attention maps (the paper sharpens with 2 to 100)."""


@dataclass
class EcapaBackendConfig:
    """ECAPA-TDNN from speech.speaker over the front-end's frames; its input width comes from the front-end."""

    kind: str = "ecapa"
    ecapa: dict[str, Any] = field(default_factory=lambda: {"channels": 128, "scale": 4, "se_channels": 64,
                                                           "mfa_channels": 384, "attention_channels": 64})
    """speech.speaker.config.EcapaConfig fields other than n_mels and embed_dim."""


BackendConfig = ResNetConfig | AasistConfig | EcapaBackendConfig
_BACKEND_TYPES: dict[str, type] = {"resnet": ResNetConfig, "aasist": AasistConfig, "ecapa": EcapaBackendConfig}


def _pick(cls: type, d: dict[str, Any]) -> Any:
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in names})


def backend_from_dict(d: dict[str, Any] | BackendConfig) -> BackendConfig:
    """The back-end dataclass named by ``d["kind"]``."""
    if not isinstance(d, dict):
        return d
    kind = d.get("kind")
    if kind not in _BACKEND_TYPES:
        raise ValueError(f"backend.kind={kind!r}: choose from {list(BACKENDS)}")
    return _pick(_BACKEND_TYPES[kind], d)


@dataclass
class SourceTracerConfig:
    """Front-end, back-end, an embedding and heads for the source system and the architecture family."""

    frontend: FrontendConfig = field(default_factory=FrontendConfig)
    """How waveforms become features."""
    backend: BackendConfig = field(default_factory=ResNetConfig)
    """The network from features to an utterance vector."""
    embed_dim: int = 128
    """Size of the utterance embedding the heads (and kNN open-set scoring) read."""
    dropout: float = 0.2
    """Dropout before the heads."""
    sources: list[str] = field(default_factory=list)
    """Known source systems: the source head's classes, in order."""
    families: list[str] = field(default_factory=list)
    """Known architecture families: the family head's classes, in order."""

    def __post_init__(self) -> None:
        if isinstance(self.frontend, dict):
            self.frontend = _pick(FrontendConfig, self.frontend)
        self.backend = backend_from_dict(self.backend)
        self.sources, self.families = list(self.sources), list(self.families)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SourceTracerConfig:
        """The architecture keys of a dict (a model directory's ``config.json`` holds others too)."""
        return _pick(cls, d)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Named front-ends.


def lfcc(**overrides: Any) -> FrontendConfig:
    """20 linear-frequency cepstra from 60 filters with deltas (60 features; ASVspoof 2019/2021 LFCC baseline)."""
    return FrontendConfig(**{"kind": "lfcc", **overrides})


def mfcc(**overrides: Any) -> FrontendConfig:
    """20 mel cepstra from 60 mel filters with deltas (60 features)."""
    return FrontendConfig(**{"kind": "mfcc", **overrides})


def cqt(**overrides: Any) -> FrontendConfig:
    """Log constant-Q power, 84 bins from 50 Hz at 12 an octave; kernels cut at 2048 samples (below 131 Hz wider)."""
    return FrontendConfig(**{"kind": "cqt", "deltas": False, "n_fft": 2048, **overrides})


def ssl(encoder: dict[str, Any] | None = None, **overrides: Any) -> FrontendConfig:
    """Learned-weight sum of a wav2vec2 encoder's layers (architecture filled in from ``model.ssl_init``)."""
    return FrontendConfig(**{"kind": "ssl", "ssl_encoder": encoder, "deltas": False, **overrides})


# Named back-ends.


def resnet18(**overrides: Any) -> ResNetConfig:
    """ResNet-18 at width 32 (about 2.8M parameters)."""
    return ResNetConfig(**{"width": 32, **overrides})


def resnet18_tiny(**overrides: Any) -> ResNetConfig:
    """ResNet-18 at width 16 (about 0.7M parameters): the 2-core CPU default."""
    return ResNetConfig(**{"width": 16, **overrides})


def aasist_tiny(**overrides: Any) -> AasistConfig:
    """AASIST-style graph attention, about 0.2M parameters."""
    return AasistConfig(**overrides)


def ecapa_tiny(**overrides: Any) -> EcapaBackendConfig:
    """The speaker encoder's tiny ECAPA-TDNN (speech.speaker.config.ecapa_tiny widths), about 0.5M parameters."""
    return EcapaBackendConfig(**overrides)


def source_tracer(frontend: FrontendConfig | None = None, backend: BackendConfig | None = None,
                  **overrides: Any) -> SourceTracerConfig:
    """A tracer; classes are filled in from the data. Default: LFCC + tiny ResNet-18."""
    return SourceTracerConfig(frontend=frontend or lfcc(), backend=backend or resnet18_tiny(), **overrides)
