"""Transmission channels: every one keeps rate, length and type, and changes the audio the way it claims."""

from __future__ import annotations

import numpy as np
import pytest

import speech.channels as channels
from speech.channels import CHANNELS, apply_channel, codec_family, room_impulse_response

SR = 16_000


def _speechlike(seconds: float = 1.5, seed: int = 0) -> np.ndarray:
    """Voiced bursts (harmonics up to 7 kHz) separated by silence: enough bandwidth for codecs to matter."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 120 + 30 * np.sin(2 * np.pi * 1.3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    voiced = sum(np.sin(k * phase) / k for k in range(1, 58))
    gate = (np.sin(2 * np.pi * 2 * t) > 0).astype(float)
    wave = 0.3 * voiced * gate + 0.01 * rng.standard_normal(len(t)) * gate
    return (wave / np.abs(wave).max() * 0.5).astype(np.float32)


@pytest.mark.parametrize("name", list(CHANNELS))
def test_channel_keeps_length_rate_and_type(name: str) -> None:
    wave = _speechlike()
    out = apply_channel(wave, SR, name, np.random.default_rng(1))
    assert out.dtype == np.float32 and out.shape == wave.shape and np.isfinite(out).all()
    if name == "clean":
        assert np.array_equal(out, wave)
    else:
        assert not np.allclose(out, wave, atol=1e-4), f"{name} left the audio unchanged"
        # Still the same speech, in time (codecs' priming delay is undone), unless noise or a room swamp it.
        corr = float(np.corrcoef(out, wave)[0, 1])
        assert corr > (0.5 if CHANNELS[name].kind in ("noise", "reverb") else 0.9), (name, corr)


def _band_energy(wave: np.ndarray, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(wave)) ** 2
    freqs = np.fft.rfftfreq(len(wave), 1 / SR)
    return float(spec[(freqs >= lo) & (freqs < hi)].sum() / spec.sum())


def test_resample_8k_removes_the_band_above_4k() -> None:
    wave = _speechlike()
    assert _band_energy(wave, 4200, 8000) > 1e-3
    assert _band_energy(apply_channel(wave, SR, "resample_8k", np.random.default_rng(0)), 4200, 8000) < 1e-5


def test_noise_sits_at_its_snr_and_reverb_fills_the_pauses() -> None:
    wave = _speechlike()
    noisy = apply_channel(wave, SR, "noise_snr15", np.random.default_rng(0))
    loud = wave[np.abs(wave) > 0.05 * np.abs(wave).max()]
    snr = 10 * np.log10(np.mean(loud**2) / np.mean((noisy - wave) ** 2))
    assert 13.5 < snr < 16.5
    wet = apply_channel(wave, SR, "reverb", np.random.default_rng(0))
    pause = slice(int(0.25 * SR) + 400, int(0.25 * SR) + 1600)  # just after a burst ends: the room's tail
    assert np.abs(wave[pause]).max() < 0.02 < np.abs(wet[pause]).max()


def test_room_impulse_response_decays() -> None:
    rir = room_impulse_response(SR, 0.5, np.random.default_rng(0))
    assert rir[0] == 1.0 and len(rir) == SR // 2
    early, late = np.abs(rir[100:2000]).mean(), np.abs(rir[-2000:]).mean()
    assert late < early / 100


def test_codec_families_and_bad_input() -> None:
    assert codec_family("opus_16k") == "opus" and codec_family("clean") == "clean"
    with pytest.raises(KeyError, match="unknown channel 'gsm'"):
        apply_channel(_speechlike(), SR, "gsm", np.random.default_rng(0))
    with pytest.raises(ValueError, match="mono"):
        apply_channel(np.zeros((2, 100), np.float32), SR, "clean", np.random.default_rng(0))


def test_missing_ffmpeg_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(channels.shutil, "which", lambda tool: None)
    with pytest.raises(RuntimeError, match="ffmpeg is not installed"):
        apply_channel(_speechlike(), SR, "mp3_24k", np.random.default_rng(0))
