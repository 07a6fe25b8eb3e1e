"""Waveform augmentation: each step does what its config says, seeded, bounded, and only to training batches."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from datamodules.speech import SpeechDataModule
from speech.audio import SAMPLE_RATE, load_audio
from speech.augment import (
    Augment,
    AugmentConfig,
    add_noise,
    band_limit,
    coloured_noise,
    fft_size,
    synthetic_rir,
)
from tests.helpers import compose_cfg, load_script, speechlike, tiny_overrides

EVERYTHING = {"speed_prob": 1.0, "reverb_prob": 1.0, "noise_prob": 1.0, "bandlimit_prob": 1.0, "gain_prob": 1.0,
              "prosody_prob": 1.0, "whisper_prob": 1.0}


def _snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    noise = noisy.astype(np.float64) - clean
    return float(10 * np.log10(np.sum(clean.astype(np.float64) ** 2) / np.sum(noise**2)))


def _band_energy(x: np.ndarray, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)
    return float(spec[(freqs >= lo) & (freqs <= hi)].sum())


def _fed(aug: Augment, n: int = 4) -> Augment:
    """The augmenter after ``n`` other utterances, so babble has sources."""
    for i in range(n):
        aug(speechlike(1.5, seed=100 + i), np.random.default_rng(i))
    return aug


def test_add_noise_hits_the_drawn_snr() -> None:
    rng = np.random.default_rng(0)
    clean = speechlike(2.0)
    for exponent in (0.0, 1.0, 2.0):
        snr = float(rng.uniform(5, 25))
        noisy = add_noise(clean, coloured_noise(len(clean), exponent, rng), snr)
        assert abs(_snr_db(clean, noisy) - snr) < 0.5


@pytest.mark.parametrize("kind", ["white", "pink", "brown", "babble"])
def test_augment_noise_at_the_configured_snr(kind: str) -> None:
    aug = _fed(Augment(AugmentConfig(noise_prob=1.0, noise_kinds=[kind], snr_db=(12.0, 12.0))))
    if kind == "babble":
        assert len(aug.reservoir) == 4
    clean = 0.3 * speechlike(2.0, seed=7)  # quiet enough that the peak guard leaves it alone
    noisy = aug(clean, np.random.default_rng(1))
    assert abs(_snr_db(clean, noisy) - 12.0) < 0.5


def test_noise_colours_have_their_spectral_slopes() -> None:
    rng = np.random.default_rng(0)
    n = 4 * SAMPLE_RATE
    for exponent, slope in ((0.0, 0.0), (1.0, -3.0), (2.0, -6.0)):
        noise = coloured_noise(n, exponent, rng)
        # Mean power per Hz one octave up: the same for white, 3 dB lower for pink, 6 dB lower for brown.
        low = _band_energy(noise, 500, 1000) / 500
        high = _band_energy(noise, 1000, 2000) / 1000
        assert abs(10 * np.log10(high / low) - slope) < 1.0, exponent


def test_gain_is_exact_and_loud_results_are_scaled_not_clipped() -> None:
    clean = 0.2 * speechlike(1.0)
    out = Augment(AugmentConfig(gain_prob=1.0, gain_db=(-6.0, -6.0)))(clean, np.random.default_rng(0))
    np.testing.assert_allclose(out, clean * 10 ** (-6 / 20), rtol=1e-6)
    loud = Augment(AugmentConfig(gain_prob=1.0, gain_db=(30.0, 30.0)))(clean, np.random.default_rng(0))
    assert np.max(np.abs(loud)) == pytest.approx(0.99, abs=1e-6)
    np.testing.assert_allclose(loud / np.max(np.abs(loud)), clean / np.max(np.abs(clean)), atol=1e-6)


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_changes_length_and_pitch_by_the_factor(factor: float) -> None:
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    out = Augment(AugmentConfig(speed_prob=1.0, speeds=[factor]))(tone, np.random.default_rng(0))
    assert abs(len(out) - len(tone) / factor) <= 1
    peak_hz = np.argmax(np.abs(np.fft.rfft(out))) * SAMPLE_RATE / len(out)
    assert peak_hz == pytest.approx(1000 * factor, abs=2)


def test_rir_decays_at_its_rt60_with_its_drr() -> None:
    rir = synthetic_rir(0.5, 6.0, np.random.default_rng(0)).astype(np.float64)
    assert rir[0] == 1.0 and 10 * np.log10(1.0 / np.sum(rir[1:] ** 2)) == pytest.approx(6.0, abs=1e-3)
    # Schroeder's energy decay curve falls 60 dB per RT60: 36 dB between 50 and 350 ms.
    edc = np.cumsum(rir[::-1] ** 2)[::-1]
    drop = 10 * np.log10(edc[int(0.05 * SAMPLE_RATE)] / edc[int(0.35 * SAMPLE_RATE)])
    assert drop == pytest.approx(36.0, abs=3.0)


def test_reverberation_leaves_a_decaying_tail_after_a_burst() -> None:
    wave = np.zeros(SAMPLE_RATE, dtype=np.float32)
    wave[:1600] = speechlike(0.1)
    aug = Augment(AugmentConfig(reverb_prob=1.0, rt60=(0.6, 0.6), drr_db=(0.0, 0.0)))
    out = aug(wave, np.random.default_rng(0))
    assert len(out) == len(wave) and np.sqrt(np.mean(out**2)) == pytest.approx(np.sqrt(np.mean(wave**2)), rel=1e-4)
    # 50 ms windows after the burst: energy present, and falling window by window.
    energy = [float(np.sum(out[s : s + 800] ** 2)) for s in range(1600, 1600 + 8 * 800, 800)]
    assert energy[0] > 1e-4 and all(a > b for a, b in pairwise(energy))


def test_band_limit_removes_energy_outside_the_telephone_band() -> None:
    white = coloured_noise(2 * SAMPLE_RATE, 0.0, np.random.default_rng(0)) * 0.1
    out = Augment(AugmentConfig(bandlimit_prob=1.0))(white, np.random.default_rng(0))
    # Not to zero: cutting the filtered signal back to its length leaves a little broadband energy (~-45 dB).
    assert _band_energy(out, 3401, 8000) < 1e-4 * _band_energy(white, 3401, 8000)
    assert _band_energy(out, 0, 299) < 1e-3 * _band_energy(white, 0, 299)
    assert _band_energy(out, 400, 3300) == pytest.approx(_band_energy(white, 400, 3300), rel=0.01)
    assert np.allclose(band_limit(white, 0, SAMPLE_RATE / 2), white, atol=1e-6)


def test_seeded_and_bounded() -> None:
    cfg = AugmentConfig(**EVERYTHING, gain_db=(10.0, 20.0))  # type: ignore[arg-type]
    waves = [speechlike(1.0 + 0.3 * i, seed=i) * 3 for i in range(5)]  # loud input: the peak guard must act
    runs = []
    for seed in (0, 0, 1):
        aug, rng = Augment(cfg), np.random.default_rng(seed)
        runs.append([aug(w, rng) for w in waves])
    for a, b in zip(runs[0], runs[1]):
        np.testing.assert_array_equal(a, b)
    assert any(len(a) != len(c) or not np.array_equal(a, c) for a, c in zip(runs[0], runs[2]))
    for out in runs[0] + runs[2]:
        assert out.dtype == np.float32 and np.isfinite(out).all() and np.max(np.abs(out)) <= 1.0
    tensor = Augment(cfg)(torch.from_numpy(waves[0]), np.random.default_rng(0))
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float32


def test_off_by_default_and_bad_settings_are_named() -> None:
    clean = speechlike(0.5)
    assert not AugmentConfig().active
    np.testing.assert_array_equal(Augment(AugmentConfig())(clean, np.random.default_rng(0)), clean)
    with pytest.raises(ValueError, match="noise_prob"):
        AugmentConfig(noise_prob=1.5)
    with pytest.raises(ValueError, match="snr_db"):
        AugmentConfig(snr_db=(20.0, 5.0))
    with pytest.raises(ValueError, match="noise_kinds"):
        AugmentConfig(noise_prob=0.5, noise_kinds=["traffic"])
    with pytest.raises(ValueError, match=r"unknown keys.*snr"):
        AugmentConfig.from_dict({"snr": [5, 10]})
    with pytest.raises(ValueError, match="speed_perturb=null"):
        SpeechDataModule(speed_perturb=[0.9, 1.0, 1.1], augment={"speed_prob": 0.5})


def test_only_training_batches_are_augmented(tiny_corpus: Path) -> None:
    dm = SpeechDataModule(f"{tiny_corpus}/train.jsonl", f"{tiny_corpus}/dev.jsonl", f"{tiny_corpus}/test.jsonl",
                          max_batch_seconds=1000, num_buckets=1, shuffle=False, speed_perturb=None, num_workers=0,
                          augment=EVERYTHING)
    files = {r["audio_raw"]: r["audio"] for stage in ("train", "val", "test") for r in dm.rows(stage)}
    for loader in (dm.val_dataloader(), dm.test_dataloader()):
        assert loader.dataset.augment is None  # type: ignore[attr-defined]
        for batch in loader:
            for wave, n, path in zip(batch["wave"], batch["wave_lens"], batch["audio"]):
                np.testing.assert_array_equal(wave[:n].numpy(), load_audio(files[path]))
    train = dm.train_dataloader()
    assert isinstance(train.dataset.augment, Augment)  # type: ignore[attr-defined]
    changed = 0
    for batch in train:
        for wave, n, path in zip(batch["wave"], batch["wave_lens"], batch["audio"]):
            clean = load_audio(files[path])
            changed += int(n) != len(clean) or not np.array_equal(wave[:n].numpy(), clean)
            assert np.isfinite(wave.numpy()).all() and float(wave.abs().max()) <= 1.0
    assert changed == len(dm.rows("train"))


def test_augmentation_can_start_at_a_later_epoch(tiny_corpus: Path) -> None:
    dm = SpeechDataModule(f"{tiny_corpus}/train.jsonl", num_workers=0, speed_perturb=None, augment=EVERYTHING,
                          augment_from_epoch=2)
    dm.trainer = SimpleNamespace(current_epoch=0, reload_dataloaders_every_n_epochs=1,  # type: ignore[assignment]
                                 global_rank=0, world_size=1)
    dm.setup("fit")
    seen = []
    for epoch in range(4):
        dm.trainer.current_epoch = epoch  # type: ignore[union-attr]
        seen.append(isinstance(dm.train_dataloader().dataset.augment, Augment))  # type: ignore[attr-defined]
    assert seen == [False, False, True, True]
    # Without a loader rebuilt every epoch the switch would never happen: refused, with the setting to change.
    dm.trainer.reload_dataloaders_every_n_epochs = 0  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="reload_dataloaders_every_n_epochs=1"):
        dm.setup("fit")
    with pytest.raises(ValueError, match="augment_from_epoch=-1"):
        SpeechDataModule(augment=EVERYTHING, augment_from_epoch=-1)


def test_asr_lowres_fast_dev_run_with_every_augmentation(tiny_corpus: Path, tmp_path: Path) -> None:
    base = compose_cfg("train", ["experiment=asr_lowres"], tmp_path)
    # Off in the recipe (measured: it cost in-domain CER and bought nothing out of domain in 24 minutes).
    assert not AugmentConfig.from_dict(dict(base.data.augment)).active and base.data.speed_perturb is None
    every = [f"data.augment.{k}={v}" for k, v in EVERYTHING.items()]
    cfg = compose_cfg("train", ["experiment=asr_lowres", *tiny_overrides(tiny_corpus), *every, "debug=fdr"], tmp_path)
    metrics = load_script("train").train(cfg)
    assert np.isfinite(metrics["train/loss"]) and metrics["train/loss"] > 0


def test_fft_size_is_the_next_5_smooth_length() -> None:
    def smooth(m: int) -> bool:
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        return m == 1

    for n in (1, 7, 1000, 40001, 48000, 65537, 12345):
        size = fft_size(n)
        assert size >= n and smooth(size) and not any(smooth(k) for k in range(n, size))
