"""Vocoders (speech/vocoder): exact lengths, Griffin-Lim quality, the iSTFT head, learning, hub, experiment=vocoder."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import soundfile as sf
import torch

from common.hub import ModelDirError
from speech.vocoder.config import VocosConfig, vocos_tiny
from speech.vocoder.griffin_lim import GriffinLimVocoder
from speech.vocoder.hub import GRIFFIN_LIM, load_vocoder, make_vocoder, save_vocoder
from speech.vocoder.losses import MultiResolutionSTFTLoss, mel_l1
from speech.vocoder.mel import LogMelSpectrogram, MelSpec
from speech.vocoder.model import ISTFTHead, MelPseudoInverse, Vocoder
from tests.helpers import compose_cfg, load_script, speechlike

HOP = MelSpec().hop
TINY = {"dim": 32, "intermediate_dim": 64, "num_layers": 2}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_vocoder(seed: int = 0, **overrides: str) -> Vocoder:
    torch.manual_seed(seed)
    return Vocoder(VocosConfig(**TINY, **overrides))  # type: ignore[arg-type]


def harmonic_tone(seconds: float = 1.0, f0: float = 180.0) -> torch.Tensor:
    """Five harmonics with a slow vibrato and a fade in/out: voiced-speech-like, fully deterministic."""
    t = torch.arange(int(seconds * 16_000)) / 16_000
    phase = 2 * math.pi * (f0 * t + 3.0 * torch.sin(2 * math.pi * 4 * t))
    wave = sum(torch.sin(k * phase) / k for k in range(1, 6))
    return (0.3 * wave * torch.sin(math.pi * t / seconds)).float()[None]  # [1, S]


@pytest.mark.parametrize("frames", [1, 2, 37])
def test_output_length_is_frames_minus_one_hops(frames: int) -> None:
    mel = torch.randn(2, frames, 80) - 4
    assert tiny_vocoder()(mel).shape == (2, (frames - 1) * HOP)
    assert GriffinLimVocoder(n_iter=2)(mel).shape == (2, (frames - 1) * HOP)
    # Whole hops of audio give k + 1 frames and come back at their own length.
    wave = torch.randn(1, 9 * HOP)
    assert tiny_vocoder()(LogMelSpectrogram()(wave)).shape == wave.shape


def test_wrong_mel_shape_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"\[B, T, 80\]"):
        tiny_vocoder()(torch.randn(2, 80, 10))
    with pytest.raises(ValueError, match=r"\[B, T, 80\]"):
        GriffinLimVocoder()(torch.randn(10, 80))


def test_griffin_lim_resynthesises_a_harmonic_tone() -> None:
    mel_of = LogMelSpectrogram()
    wave = harmonic_tone()
    mel = mel_of(wave)
    torch.manual_seed(0)
    out = GriffinLimVocoder(n_iter=32)(mel)
    gl = mel_l1(mel_of(out), mel)
    noise = mel_l1(mel_of(torch.randn_like(wave) * wave.std()), mel)
    assert gl < 0.15 * noise, (float(gl), float(noise))
    # The filterbank inversion alone is close to exact (the rest of the distance is phase).
    g = GriffinLimVocoder()
    assert mel_l1((g.linear_magnitude(mel) @ g.fb).clamp_min(1e-5).log(), mel) < 0.02


def test_istft_head_inverts_a_known_stft() -> None:
    """Fed log|X| and angle(X) of a real STFT through an identity projection, the head gives the signal back."""
    n_fft, hop = 64, 16
    head = ISTFTHead(dim=n_fft + 2, n_fft=n_fft, hop=hop, max_log_mag=20.0)
    with torch.no_grad():
        head.proj.weight.copy_(torch.eye(n_fft + 2))
        head.proj.bias.zero_()
    wave = torch.from_numpy(speechlike(0.1))[None, : 100 * hop]
    spec = torch.stft(wave, n_fft, hop, n_fft, torch.hann_window(n_fft), center=True, return_complex=True)
    feats = torch.cat([spec.abs().clamp_min(1e-9).log(), spec.angle()], dim=1).transpose(1, 2)  # [1, T, n_fft+2]
    out = head(feats)
    assert out.shape == (1, 100 * hop)
    torch.testing.assert_close(out, wave, atol=1e-4, rtol=1e-3)
    # A wrong phase does not: the test can fail.
    assert (head.synthesize(spec.abs().clamp_min(1e-9).log(), torch.zeros_like(spec.real)) - wave).abs().max() > 0.05


def test_tiny_vocoder_overfits_one_clip() -> None:
    net = tiny_vocoder()
    mel_of, stft = LogMelSpectrogram(), MultiResolutionSTFTLoss()
    wave = torch.from_numpy(speechlike(0.5, seed=3))[None, : 31 * HOP]
    mel = mel_of(wave)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(100):
        pred = net(mel)
        dist = mel_l1(mel_of(pred), mel)
        loss = dist + stft(pred, wave)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(dist))
    assert losses[-1] < 0.5 * losses[0], (losses[0], losses[-1])


def test_hub_round_trip_and_factory(tmp_path: Path) -> None:
    net = tiny_vocoder(seed=1).eval()
    out = save_vocoder(net, tmp_path / "voc")
    assert json.loads((out / "config.json").read_text())["model_type"] == "vocoder_vocos"
    mel = torch.randn(1, 12, 80) - 3
    loaded = load_vocoder(out)
    assert loaded.cfg == net.cfg
    with torch.no_grad():
        torch.testing.assert_close(loaded(mel), net(mel), rtol=0, atol=0)
        torch.testing.assert_close(make_vocoder(str(out))(mel), net(mel), rtol=0, atol=0)
    gl = make_vocoder(GRIFFIN_LIM, n_iter=4)
    assert isinstance(gl, GriffinLimVocoder) and gl.n_iter == 4
    with pytest.raises(TypeError, match="griffin_lim"):
        make_vocoder(out, n_iter=4)
    (out / "model.safetensors").unlink()
    with pytest.raises(ModelDirError, match=str(out)):
        load_vocoder(out)


def tiny_manifests(root: Path) -> list[str]:
    """Train/dev/test manifests of a few seconds of speech-like audio (with one unreadable file in train)."""
    for split, n in (("train", 4), ("dev", 2), ("test", 2)):
        rows = []
        for i in range(n):
            path = root / split / f"{i}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, speechlike(0.6 + 0.3 * i, seed=i), 16_000)
            rows.append({"audio": f"{split}/{i}.wav", "duration": 0.6 + 0.3 * i})
        if split == "train":
            (root / "train" / "bad.wav").write_bytes(b"not audio")
            rows.append({"audio": "train/bad.wav", "duration": 1.0})
        (root / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return [f"data.train_manifest={root}/train.jsonl", f"data.val_manifest={root}/dev.jsonl",
            f"data.test_manifest={root}/test.jsonl", "data.num_workers=0", "data.batch_size=2",
            "data.segment_seconds=0.5", "data.eval_seconds=1.0", "logger=csv", "callbacks.progress_bar=null",
            "trainer.enable_progress_bar=false", "trainer.accelerator=cpu",
            *(f"+model.vocoder.{k}={v}" for k, v in TINY.items())]


@pytest.mark.parametrize("adversarial", [False, True])
def test_experiment_vocoder_fast_dev_run(adversarial: bool, tmp_path: Path) -> None:
    overrides = ["experiment=vocoder", *tiny_manifests(tmp_path / "data"), "debug=fdr",
                 f"model.adversarial={adversarial}", "model.disc_warmup_steps=0"]
    cfg = compose_cfg("train", overrides, tmp_path / "run")
    assert cfg.monitor == "val/mel_l1" and cfg.trainer.gradient_clip_val is None
    metrics = load_script("train").train(cfg)
    assert metrics["train/loss"] > 0 and 0 < metrics["val/mel_l1"] == metrics["objective"]
    assert ("train/disc" in metrics) == adversarial


def test_experiment_vocoder_exports_a_loadable_vocoder(tmp_path: Path) -> None:
    overrides = ["experiment=vocoder", *tiny_manifests(tmp_path / "data"), "trainer.max_steps=2",
                 "trainer.val_check_interval=1", "trainer.limit_val_batches=1", "test=false"]
    cfg = compose_cfg("train", overrides, tmp_path / "run")
    load_script("train").train(cfg)
    voc = load_vocoder(tmp_path / "run" / "model")
    assert voc(torch.randn(1, 5, 80)).shape == (1, 4 * HOP)
    bad = [json.loads(line) for line in (tmp_path / "run" / "bad_inputs.jsonl").read_text().splitlines()]
    assert {b["audio"] for b in bad} == {"train/bad.wav"}


def test_vocoder_quality_benchmark_table(tmp_path: Path) -> None:
    from benchmarks.vocoder_quality import main

    tiny_manifests(tmp_path / "data")
    model = save_vocoder(tiny_vocoder(), tmp_path / "tiny" / "model")
    out = tmp_path / "vq.json"
    report = main([f"model={model}", f"test={tmp_path}/data/test.jsonl", "n=2", "gl_iters=[4]", f"out={out}"])
    assert json.loads(out.read_text())["systems"] == report["systems"]
    assert list(report["systems"]) == ["griffin_lim_4", "tiny"]
    gl, untrained = report["systems"]["griffin_lim_4"], report["systems"]["tiny"]
    assert gl["rtf"] > 0 and gl["mel_l1"] < untrained["mel_l1"]  # an untrained vocoder is worse than Griffin-Lim


def test_priors_start_the_vocoder_at_the_mel_pseudo_inverse() -> None:
    """Untrained, the spectrum is the mel's pseudo-inverse with frame-centred phase; far closer than no prior."""
    mel_of = LogMelSpectrogram()
    wave = harmonic_tone()
    mel = mel_of(wave)
    net = tiny_vocoder()
    assert (net.cfg.magnitude_prior, net.cfg.phase_prior) == ("mel_pinv", "frame_centre")  # the defaults
    with torch.no_grad():
        log_mag, angle = net.spectrum(mel)
        pinv = GriffinLimVocoder(nnls_iter=0).linear_magnitude(mel)  # Griffin-Lim's least-squares start
        torch.testing.assert_close(log_mag, pinv.log().transpose(1, 2), rtol=0, atol=1e-5)
        bins = torch.arange(log_mag.shape[1])[:, None].expand_as(angle[0])
        torch.testing.assert_close(angle[0], math.pi * (bins % 2).float(), rtol=0, atol=0)
        prior = float(mel_l1(mel_of(net(mel)), mel))
        plain = float(mel_l1(mel_of(tiny_vocoder(magnitude_prior="none", phase_prior="none")(mel)), mel))
        mag_only = float(mel_l1(mel_of(tiny_vocoder(phase_prior="none")(mel)), mel))
    torch.manual_seed(0)
    gl = float(mel_l1(mel_of(GriffinLimVocoder(n_iter=32)(mel)), mel))
    # Measured: prior 0.48, Griffin-Lim-32 0.18, magnitude prior alone 1.09 (a near-zero angle puts each frame's
    # energy at the window's edges), no prior 4.8. The phase is what training has left to learn.
    assert prior < 0.15 * plain and prior < 0.6 * mag_only, (prior, mag_only, plain)
    assert gl < prior < 10 * gl, (gl, prior)


def test_priors_keep_the_output_trainable() -> None:
    """The zeroed projection still gets gradients, and the backbone gets them after the first step."""
    net = tiny_vocoder()
    mel = LogMelSpectrogram()(harmonic_tone(0.3))
    opt = torch.optim.SGD(net.parameters(), lr=1e-2)
    for _ in range(2):
        opt.zero_grad()
        net(mel).pow(2).mean().backward()
        opt.step()
    assert net.head.proj.weight.grad is not None and net.head.proj.weight.grad.abs().sum() > 0
    grad = net.embed.weight.grad  # the first layer: the whole backbone is in the loss's graph
    assert grad is not None and grad.abs().sum() > 0


def test_prior_config_round_trip_and_old_configs(tmp_path: Path) -> None:
    for overrides in ({}, {"magnitude_prior": "none", "phase_prior": "none"}, {"phase_prior": "none"}):
        net = tiny_vocoder(seed=2, **overrides).eval()
        loaded = load_vocoder(save_vocoder(net, tmp_path / str(len(overrides)) / str(overrides)))
        assert loaded.cfg == net.cfg and (loaded.magnitude_prior is None) == (net.cfg.magnitude_prior == "none")
        mel = torch.randn(1, 9, 80) - 3
        with torch.no_grad():
            torch.testing.assert_close(loaded(mel), net(mel), rtol=0, atol=0)
    # A directory exported before the priors existed has neither key: it loads as the plain Vocos it was.
    old = save_vocoder(tiny_vocoder(seed=3, magnitude_prior="none", phase_prior="none").eval(), tmp_path / "old")
    config = json.loads((old / "config.json").read_text())
    for key in ("magnitude_prior", "phase_prior"):
        del config[key]
    (old / "config.json").write_text(json.dumps(config))
    legacy = load_vocoder(old)
    assert (legacy.cfg.magnitude_prior, legacy.cfg.phase_prior) == ("none", "none")
    assert legacy.magnitude_prior is None and not legacy.head.phase_offset.any()
    assert VocosConfig.from_dict({"dim": 8}).magnitude_prior == "none"
    assert vocos_tiny().magnitude_prior == "mel_pinv" and isinstance(MelPseudoInverse(MelSpec()).pinv, torch.Tensor)
    with pytest.raises(ValueError, match="magnitude_prior"):
        VocosConfig(magnitude_prior="nnls")
