"""The log-mel frames that text-to-speech predicts and vocoders turn back into waveforms.

One definition for the acoustic model, the vocoder and their metrics, so a vocoder trained on its own fits any
acoustic model that uses the same ``MelSpec``. Unlike the ASR front-end (``speech.features.LogMel``) the frames are
not normalised per utterance: a vocoder must hear absolute levels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torchaudio
from torch import Tensor, nn


@dataclass(frozen=True)
class MelSpec:
    """Log-mel analysis settings (16 ms frames at 16 kHz)."""

    sample_rate: int = 16_000
    """Waveform rate in Hz."""
    n_fft: int = 1024
    """FFT size; also the analysis window length."""
    hop: int = 256
    """Samples between frames."""
    n_mels: int = 80
    """Mel bands."""
    f_min: float = 0.0
    """Lowest band edge in Hz."""
    f_max: float = 8_000.0
    """Highest band edge in Hz (Nyquist at 16 kHz)."""
    floor: float = 1e-5
    """Magnitudes are clamped to this before the log, so silence is ``log(floor)``."""

    @property
    def frame_rate(self) -> float:
        """Frames per second."""
        return self.sample_rate / self.hop

    def frames(self, samples: int) -> int:
        """Frames that ``samples`` waveform samples give (centred STFT)."""
        return samples // self.hop + 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class LogMelSpectrogram(nn.Module):
    """Waveforms [B, S] to natural-log mel magnitudes [B, T, n_mels] (T = S // hop + 1)."""

    def __init__(self, spec: MelSpec = MelSpec()):
        super().__init__()
        self.spec = spec
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=spec.sample_rate, n_fft=spec.n_fft, win_length=spec.n_fft, hop_length=spec.hop,
            f_min=spec.f_min, f_max=spec.f_max, n_mels=spec.n_mels, power=1.0, center=True, pad_mode="reflect",
            norm="slaney", mel_scale="slaney",
        )

    def forward(self, wave: Tensor) -> Tensor:
        with torch.autocast(device_type=wave.device.type, enabled=False):
            mag = self.mel(wave.float())  # [B, n_mels, T]
        return mag.clamp_min(self.spec.floor).log().transpose(1, 2)
