"""Vocos-style vocoder settings (Siuzdak, 2023, arXiv:2306.00814) and named sizes."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from speech.vocoder.mel import MelSpec

MAGNITUDE_PRIORS = ("mel_pinv", "none")
"""Where the head's log-magnitude starts (``VocosConfig.magnitude_prior``)."""
PHASE_PRIORS = ("frame_centre", "none")
"""Where the head's phase starts (``VocosConfig.phase_prior``)."""
LEGACY_DEFAULTS: dict[str, Any] = {"magnitude_prior": "none", "phase_prior": "none"}
"""What a stored config without these keys meant: directories exported before the priors load unchanged."""


@dataclass
class VocosConfig:
    """A ConvNeXt backbone over log-mel frames and an iSTFT head with the mel's own FFT size and hop."""

    mel: MelSpec = field(default_factory=MelSpec)
    """The log-mel frames the vocoder reads; the head's iSTFT uses its ``n_fft`` and ``hop``."""
    dim: int = 512
    """Channels of the backbone."""
    intermediate_dim: int = 1536
    """Hidden width of each ConvNeXt block's pointwise MLP."""
    num_layers: int = 8
    """ConvNeXt blocks."""
    kernel_size: int = 7
    """Depthwise convolution width in frames (also the input convolution's)."""
    max_log_mag: float = 6.9
    """Predicted log-magnitudes are clipped here (exp(6.9) ~ 1000, above a full-scale sine's ~512)."""
    layer_scale_init: float | None = None
    """Initial per-channel residual scale; None means 1 / num_layers, as Vocos does."""
    magnitude_prior: str = "mel_pinv"
    """"mel_pinv": the network predicts a correction to log(pinv(mel filterbank) applied to exp(mel)), the linear
    magnitude Griffin-Lim starts from, so training begins at its magnitude; "none": Vocos' plain prediction."""
    phase_prior: str = "frame_centre"
    """"frame_centre": the predicted phase is added to pi * (bin mod 2), the phase of a frame centred in its window
    (a near-zero angle puts each frame's energy at the window's edges, where the synthesis window removes it);
    "none": Vocos' plain angle."""

    def __post_init__(self) -> None:
        if isinstance(self.mel, dict):
            self.mel = MelSpec(**self.mel)
        if self.magnitude_prior not in MAGNITUDE_PRIORS:
            raise ValueError(f"magnitude_prior must be one of {MAGNITUDE_PRIORS}, got {self.magnitude_prior!r}")
        if self.phase_prior not in PHASE_PRIORS:
            raise ValueError(f"phase_prior must be one of {PHASE_PRIORS}, got {self.phase_prior!r}")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (same-length convolution), got {self.kernel_size}")
        if min(self.dim, self.intermediate_dim, self.num_layers) < 1:
            raise ValueError("dim, intermediate_dim and num_layers must be at least 1")

    @property
    def n_freqs(self) -> int:
        """One-sided STFT bins the head predicts."""
        return self.mel.n_fft // 2 + 1

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> VocosConfig:
        """The config of a ``config.json`` (keys of other layers, such as ``model_type``, are ignored).

        A key the dict lacks takes its ``LEGACY_DEFAULTS`` value where it has one, so an older export keeps its
        architecture; only a new config (``vocos_tiny()``, the yaml) gets the dataclass defaults.
        """
        names = {f.name for f in fields(cls)}
        return cls(**{**LEGACY_DEFAULTS, **{k: v for k, v in config.items() if k in names}})


def vocos(**overrides: Any) -> VocosConfig:
    """Vocos' published mel vocoder shape (8 blocks of 512 channels, ~13.5M parameters at n_fft 1024)."""
    return VocosConfig(**overrides)


def vocos_tiny(**overrides: Any) -> VocosConfig:
    """~0.8M parameters: trains to intelligible speech in about 15 minutes on one CPU core."""
    return vocos(**{"dim": 128, "intermediate_dim": 384, "num_layers": 6, **overrides})


@dataclass
class DiscriminatorConfig:
    """Multi-period (HiFi-GAN) and multi-resolution (UnivNet) discriminators, kept small for CPU runs."""

    periods: tuple[int, ...] = (2, 3, 5, 7, 11)
    """Periods of the multi-period discriminator's 2-D views of the waveform."""
    period_channels: int = 16
    """Channels of the first period-discriminator layer (doubled per layer up to 4x)."""
    resolutions: tuple[tuple[int, int], ...] = ((512, 128), (1024, 256), (256, 64))
    """(n_fft, hop) of each multi-resolution discriminator's spectrogram."""
    resolution_channels: int = 16
    """Channels of the spectrogram discriminators' 2-D convolutions."""

    def __post_init__(self) -> None:
        self.periods = tuple(int(p) for p in self.periods)
        self.resolutions = tuple((int(n), int(h)) for n, h in self.resolutions)
