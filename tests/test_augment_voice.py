"""Voice-source and prosody augmentation: pseudo-whisper removes pitch, tempo and pitch move independently."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from speech.asr.module import ASRModule
from speech.audio import SAMPLE_RATE
from speech.augment import Augment, AugmentConfig
from speech.augment_voice import breathy, lpc_envelope, noise_excited, prosody, pseudo_whisper, time_stretch
from tests.helpers import speechlike

F0 = 125.0  # Hz: a pitch period of 128 samples


def _resonator(f: float, bw: float) -> tuple[float, float]:
    r = np.exp(-np.pi * bw / SAMPLE_RATE)
    return 2 * r * np.cos(2 * np.pi * f / SAMPLE_RATE), -r * r


def vowel(seconds: float = 1.0, f0: float = F0, formants: tuple[float, ...] = (700.0, 1200.0)) -> np.ndarray:
    """A pulse train at ``f0`` through two-pole resonators at ``formants``: a crude voiced vowel."""
    x = np.zeros(int(seconds * SAMPLE_RATE))
    x[:: round(SAMPLE_RATE / f0)] = 1.0
    for f in formants:
        a1, a2 = _resonator(f, 100.0)
        y = np.zeros_like(x)
        for n in range(len(x)):  # a plain IIR loop keeps the test free of scipy
            y[n] = x[n] + a1 * (y[n - 1] if n else 0.0) + a2 * (y[n - 2] if n > 1 else 0.0)
        x = y
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def periodicity(x: np.ndarray, lo_hz: float = 70.0, hi_hz: float = 400.0) -> tuple[float, float]:
    """Peak of the normalised autocorrelation over pitch lags, and the frequency of that lag."""
    x = x.astype(np.float64) - x.mean()
    spec = np.fft.rfft(x, 2 * len(x))
    ac = np.fft.irfft(np.abs(spec) ** 2)[: len(x)]
    ac /= ac[0]
    lo, hi = int(SAMPLE_RATE / hi_hz), int(SAMPLE_RATE / lo_hz)
    lag = lo + int(np.argmax(ac[lo:hi]))
    return float(ac[lag]), SAMPLE_RATE / lag


def peak_hz(x: np.ndarray, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(x.astype(np.float64) * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)
    band = (freqs >= lo) & (freqs <= hi)
    return float(freqs[band][np.argmax(spec[band])])


def test_pseudo_whisper_removes_periodicity_and_keeps_envelope_and_level() -> None:
    x = vowel()
    peak, hz = periodicity(x)
    assert peak > 0.8 and abs(hz - F0) < 3
    w = pseudo_whisper(x, np.random.default_rng(0))
    assert w.shape == x.shape and w.dtype == np.float32 and np.isfinite(w).all()
    assert periodicity(w)[0] < 0.3
    assert np.sqrt(np.mean(w**2)) == pytest.approx(np.sqrt(np.mean(x**2)), rel=1e-3)
    # Smoothed spectra: the strongest region stays at the first formant.
    assert abs(peak_hz(np.convolve(w, np.ones(4) / 4, "same"), 300, 3000) - 700) < 150
    # A breathy mix sits in between: still voiced, less so.
    b = breathy(x, np.random.default_rng(0), 0.5)
    assert b.shape == x.shape and periodicity(w)[0] < periodicity(b)[0] < peak


def test_lpc_envelope_peaks_at_the_formant() -> None:
    x = vowel(0.2, formants=(900.0,))
    power = np.abs(np.fft.rfft(x[:512] * np.hanning(512))) ** 2
    env = lpc_envelope(power[:, None], order=12)[:, 0]
    assert abs(np.argmax(env) * SAMPLE_RATE / 512 - 900) < 100


def test_whisper_tilt_moves_energy_up() -> None:
    x = vowel()
    flat = pseudo_whisper(x, np.random.default_rng(1), tilt=0.0)
    tilted = pseudo_whisper(x, np.random.default_rng(1), tilt=0.9)

    def low_share(y: np.ndarray) -> float:
        s = np.abs(np.fft.rfft(y.astype(np.float64))) ** 2
        return float(s[: len(s) // 8].sum() / s.sum())  # below 1 kHz

    assert low_share(tilted) < low_share(flat)


@pytest.mark.parametrize(("tempo", "semitones"), [(1.5, 0.0), (0.7, 0.0), (1.0, 4.0), (1.3, -4.0)])
def test_prosody_changes_tempo_and_pitch_independently(tempo: float, semitones: float) -> None:
    x = vowel(1.0)
    y = prosody(x, tempo, semitones)
    assert y.dtype == np.float32 and abs(len(y) - len(x) / tempo) <= 2
    expected = F0 * 2 ** (semitones / 12)
    assert abs(peak_hz(y, 0.8 * expected, 1.25 * expected) - expected) < 0.04 * expected
    if semitones == 0.0:  # tempo alone leaves the pitch where it was
        assert abs(periodicity(y)[1] - F0) < 4


def test_seeded_shapes_and_config_wiring() -> None:
    cfg = AugmentConfig(whisper_prob=0.5, breathy_prob=0.5, prosody_prob=0.5)
    assert cfg.active
    waves = [speechlike(0.8 + 0.2 * i, seed=i) for i in range(6)]
    runs = [[Augment(cfg)(w, np.random.default_rng(s)) for w in waves] for s in (3, 3, 4)]
    for a, b in zip(runs[0], runs[1]):
        np.testing.assert_array_equal(a, b)
    assert any(len(a) != len(c) or not np.array_equal(a, c) for a, c in zip(runs[0], runs[2]))
    always = Augment(AugmentConfig(whisper_prob=1.0))(vowel(), np.random.default_rng(0))
    assert periodicity(always)[0] < 0.3
    out = Augment(cfg)(torch.from_numpy(waves[0]), np.random.default_rng(0))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    short = np.zeros(100, dtype=np.float32)  # shorter than one analysis frame: left alone, no crash
    np.testing.assert_array_equal(noise_excited(short, np.random.default_rng(0)), short)
    silent = np.zeros(SAMPLE_RATE, dtype=np.float32)
    assert np.isfinite(pseudo_whisper(silent, np.random.default_rng(0), tilt=0.5)).all()


def test_bad_input_and_settings_are_named() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"noise_excited: expected a mono waveform.*\[2, 100\]"):
        noise_excited(np.zeros((2, 100), dtype=np.float32), rng)
    with pytest.raises(ValueError, match="NaN or infinite"):
        pseudo_whisper(np.full(1000, np.nan, dtype=np.float32), rng)
    with pytest.raises(ValueError, match="rate=0"):
        time_stretch(vowel(0.1), 0)
    with pytest.raises(ValueError, match=r"ratio=1\.5"):
        breathy(vowel(0.1), rng, 1.5)
    with pytest.raises(ValueError, match="whisper_prob"):
        AugmentConfig(whisper_prob=2.0)
    with pytest.raises(ValueError, match="whisper_tilt"):
        AugmentConfig(whisper_tilt=(0.0, 1.0))
    with pytest.raises(ValueError, match="tempo"):
        AugmentConfig(tempo=(0.0, 1.5))
    with pytest.raises(ValueError, match="breath_ratio"):
        AugmentConfig(breath_ratio=(0.5, 1.2))


VOCAB = ["_", "?", " ", "a", "b", "c"]
TINY = {"d_model": 32, "num_layers": 1, "num_heads": 2, "conv_kernel": 5, "ff_mult": 2}


def test_init_model_copies_the_whole_network_and_checks_the_vocabulary(tmp_path: Path) -> None:
    torch.manual_seed(0)
    src = ASRModule(TINY, vocab=VOCAB, langs=["eng_Latn"])
    src.export(tmp_path / "m")
    torch.manual_seed(1)
    fresh = ASRModule(TINY, vocab=VOCAB, langs=["eng_Latn"])
    assert not torch.equal(fresh.net.head.weight, src.net.head.weight)
    tuned = ASRModule(TINY, vocab=VOCAB, langs=["eng_Latn"], init_model=str(tmp_path / "m"))
    for (k, a), b in zip(src.net.state_dict().items(), tuned.net.state_dict().values()):
        assert torch.equal(a, b), k
    with pytest.raises(ValueError, match=r"m: its vocabulary .* differs.*init_encoder"):
        ASRModule(TINY, vocab=[*VOCAB[:-1], "d"], langs=["eng_Latn"], init_model=str(tmp_path / "m"))


def test_pitch_shift_keeps_the_formant_unless_asked_not_to() -> None:
    x = vowel(1.0, f0=110.0, formants=(800.0,))

    def formant(y: np.ndarray) -> float:  # the envelope's peak, from LPC on the middle of the utterance
        mid = y[len(y) // 2 - 256 : len(y) // 2 + 256].astype(np.float64)
        env = lpc_envelope((np.abs(np.fft.rfft(mid * np.hanning(512))) ** 2)[:, None], order=10)[:, 0]
        return float(np.argmax(env) * SAMPLE_RATE / 512)

    assert abs(formant(x) - 800) < 60
    up = 2 ** (5 / 12)
    kept, moved = prosody(x, 1.0, 5.0), prosody(x, 1.0, 5.0, keep_formants=False)
    assert abs(formant(kept) - 800) < 80 and abs(formant(moved) - 800 * up) < 100
    assert abs(peak_hz(kept, 120, 180) - 110 * up) < 5  # the pitch moved either way
