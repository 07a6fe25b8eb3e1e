"""Log-mel front-end and SpecAugment, computed on the device inside the model."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torchaudio
from torch import Tensor, nn


class LogMel(nn.Module):
    """Waveforms [B, S] to log-mel features [B, T, n_mels] with 25 ms windows and a 10 ms hop.

    ``eval_hop_ms``: the hop outside training (default: the training hop). A finer one reads speech as if it were
    slower, with the same spectra: more frames for a character CTC model whose frames run short on fast speech.
    """

    def __init__(self, sample_rate: int = 16_000, n_mels: int = 80, hop_ms: float = 10.0, win_ms: float = 25.0,
                 eval_hop_ms: float | None = None):
        super().__init__()
        self.sample_rate = sample_rate
        self.hop = int(sample_rate * hop_ms / 1000)
        win = int(sample_rate * win_ms / 1000)
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=512, win_length=win, hop_length=self.hop, n_mels=n_mels,
            center=True, pad_mode="constant", power=2.0,  # zero padding, as inside a padded batch
        )
        self.set_eval_hop(eval_hop_ms)

    def set_eval_hop(self, ms: float | None) -> None:
        """Use a hop of ``ms`` milliseconds outside training (None: the training hop)."""
        hop = self.hop if ms is None else round(self.sample_rate * ms / 1000)
        if not 0 < hop <= self.mel.spectrogram.win_length:
            raise ValueError(f"a log-mel hop of {ms} ms must be positive and at most the window")
        self.eval_hop = hop

    def forward(self, wave: Tensor, wave_lens: Tensor) -> tuple[Tensor, Tensor]:
        hop = self.hop if self.training else self.eval_hop
        spec = self.mel.spectrogram
        with torch.autocast(device_type=wave.device.type, enabled=False):
            power = torchaudio.functional.spectrogram(
                wave.float(), spec.pad, spec.window, spec.n_fft, hop, spec.win_length, spec.power, spec.normalized,
                center=spec.center, pad_mode=spec.pad_mode, onesided=spec.onesided)
            feats = self.mel.mel_scale(power).clamp_min(1e-10).log().transpose(1, 2)  # [B, T, F]
        lens = wave_lens // hop + 1
        mask = torch.arange(feats.shape[1], device=feats.device)[None] < lens[:, None]
        # Per-utterance mean/variance normalisation over the real frames only.
        n = lens.clamp_min(1)[:, None, None].to(feats.dtype)
        m = mask[..., None].to(feats.dtype)
        mean = (feats * m).sum(1, keepdim=True) / n
        var = ((feats - mean).pow(2) * m).sum(1, keepdim=True) / n
        feats = (feats - mean) / (var + 1e-5).sqrt() * m
        return feats, lens


class SpecAugment(nn.Module):
    """Frequency and time masking (Park et al., 2019) and tempo changes of the feature sequence, active only in
    training mode."""

    def __init__(self, freq_masks: int = 2, freq_width: int = 15, time_masks: int = 4, time_width: float = 0.05,
                 tempo_prob: float = 0.0, tempo: Sequence[float] = (0.6, 1.8)):
        super().__init__()
        self.freq_masks, self.freq_width = freq_masks, freq_width
        self.time_masks, self.time_width = time_masks, time_width
        if not 0.0 <= tempo_prob <= 1.0 or len(tempo) != 2 or not 0 < tempo[0] <= tempo[1]:
            raise ValueError(f"specaug: tempo_prob={tempo_prob} must be in [0, 1] and tempo={list(tempo)} a range "
                             "[low, high] of positive rates")
        self.tempo_prob, self.tempo = tempo_prob, (float(tempo[0]), float(tempo[1]))
        self.active = True
        """False switches it off in training too (a trainer's schedule sets it)."""

    def stretch(self, feats: Tensor, lens: Tensor) -> tuple[Tensor, Tensor]:
        """The batch, with chance ``tempo_prob``, played at a rate drawn log-uniformly from ``tempo`` (> 1 is
        faster): its frames resampled in time by linear interpolation, so pitch and spectral envelope stay and only
        the speaking rate changes. Costs a gather, against ~100 ms an utterance for a waveform phase vocoder in a
        DataLoader worker. One rate for the whole batch: a rate per utterance would pad every batch to its most
        slowed-down member (the main job's first epoch ran at 0.92 steps/s that way, 1.27 this way). Returns the
        new features and lengths; identity outside training."""
        if not (self.training and self.active) or self.tempo_prob <= 0.0:
            return feats, lens
        b, _, f = feats.shape
        dev = feats.device
        lo, hi = math.log(self.tempo[0]), math.log(self.tempo[1])
        if float(torch.rand(())) >= self.tempo_prob:
            return feats, lens
        rate = torch.exp(torch.rand((), device=dev) * (hi - lo) + lo).expand(b)
        new = (lens.float() / rate).round().long().clamp_min(1)
        last = (lens - 1).clamp_min(0)[:, None]
        pos = torch.minimum(torch.arange(int(new.max()), device=dev)[None] * rate[:, None], last.float())
        i0 = pos.floor().long()
        i1 = torch.minimum(i0 + 1, last)
        w = (pos - i0)[..., None].to(feats.dtype)
        def frames(i: Tensor) -> Tensor:
            return feats.gather(1, i[..., None].expand(-1, -1, f))

        out = (1 - w) * frames(i0) + w * frames(i1)
        mask = torch.arange(out.shape[1], device=dev)[None] < new[:, None]
        return out * mask[..., None], new

    def forward(self, feats: Tensor, lens: Tensor) -> Tensor:
        if not (self.training and self.active):
            return feats
        b, t, f = feats.shape
        dev = feats.device
        keep = torch.ones(b, t, f, dtype=torch.bool, device=dev)
        fr = torch.arange(f, device=dev)[None]
        for _ in range(self.freq_masks):
            w = torch.randint(0, self.freq_width + 1, (b, 1), device=dev)
            s = (torch.rand(b, 1, device=dev) * (f - w)).long()
            keep &= ~((fr >= s) & (fr < s + w))[:, None, :]
        tr = torch.arange(t, device=dev)[None]
        max_w = (lens.float() * self.time_width).long().clamp_min(1)[:, None]
        for _ in range(self.time_masks):
            w = (torch.rand(b, 1, device=dev) * max_w).long()
            s = (torch.rand(b, 1, device=dev) * (lens[:, None] - w).clamp_min(1)).long()
            keep &= ~((tr >= s) & (tr < s + w))[:, :, None]
        return feats * keep


FRAME_PROBE_SAMPLES = (32_000, 193_280)
"""Two input lengths whose difference, 161,280 samples, is a whole number of output frames for every frame size the
suite's recognisers use (4x-subsampled log-mel hops of 7-10 ms: 448-640 samples; wav2vec2's 320), so a frame size
measured from their frame counts is exact."""


def frame_samples_of(frame_counts: Callable[[list[np.ndarray]], Tensor]) -> int:
    """Input samples per output frame of a recogniser, from ``frame_counts`` (waveforms to frame counts [B]) of
    ``FRAME_PROBE_SAMPLES`` of quiet noise."""
    rng = np.random.default_rng(0)
    lens = frame_counts([0.01 * rng.standard_normal(n).astype(np.float32) for n in FRAME_PROBE_SAMPLES])
    return round((FRAME_PROBE_SAMPLES[1] - FRAME_PROBE_SAMPLES[0]) / int(lens[1] - lens[0]))


def pad_waves(waves: Sequence[np.ndarray | Tensor]) -> tuple[Tensor, Tensor]:
    """Right-pad mono waveforms into [B, S] and their lengths."""
    lens = torch.tensor([len(w) for w in waves], dtype=torch.long)
    batch = torch.zeros(len(waves), int(lens.max()) if len(waves) else 0)
    for i, w in enumerate(waves):
        batch[i, : len(w)] = torch.as_tensor(w)
    return batch, lens
