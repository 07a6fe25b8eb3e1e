"""speech.encoders.conformer and speech.asr.model: shapes, lengths, padding masks, head growth, determinism."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from speech.asr.config import (
    CTCModelConfig,
    SpecAugmentConfig,
    conformer,
    conformer_base,
    conformer_small,
    conformer_tiny,
    wav2vec2_tiny,
)
from speech.asr.hub import save_pretrained
from speech.asr.infer import Transcriber
from speech.asr.model import CTCModel
from speech.asr.module import ASRModule
from speech.encoders.conformer import ConformerConfig, ConformerEncoder, ConvSubsampling
from speech.features import SpecAugment
from text.char_vocab import CharVocab

HOP = 160  # 10 ms at 16 kHz


@pytest.fixture(autouse=True, scope="module")
def _single_thread() -> Iterator[None]:
    # These models are tiny: intra-op threads only add synchronisation cost (and stall badly on a busy box).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _sub_len(n: int, factor: int) -> int:
    """Frames after ``log2(factor)`` stride-2 convolutions with padding 1 (ceil-halving)."""
    for _ in range({2: 1, 4: 2, 8: 3}[factor]):
        n = (n - 1) // 2 + 1
    return n


def _tiny_model(subsampling: int = 4, vocab: int = 12, seed: int = 0, **enc: object) -> CTCModel:
    torch.manual_seed(seed)
    cfg = CTCModelConfig(
        vocab_size=vocab, encoder=conformer_tiny(d_model=32, num_layers=2, subsampling=subsampling, **enc)
    )
    return CTCModel(cfg).eval()


def _tiny_encoder(subsampling: int, conv_kernel: int = 15, seed: int = 0) -> ConformerEncoder:
    torch.manual_seed(seed)
    cfg = conformer(n_mels=16, d_model=32, num_layers=2, num_heads=4, conv_kernel=conv_kernel, subsampling=subsampling)
    return ConformerEncoder(cfg).eval()


# ---------------------------------------------------------------- configs


def test_config_builders() -> None:
    tiny = conformer_tiny()
    assert isinstance(tiny, ConformerConfig)
    assert (tiny.d_model, tiny.num_layers, tiny.num_heads, tiny.conv_kernel) == (144, 6, 4, 15)
    assert (conformer_small().d_model, conformer_small().num_layers) == (256, 8)
    assert (conformer_base().d_model, conformer_base().num_heads) == (384, 6)
    over = conformer_tiny(d_model=32, num_layers=2, subsampling=8)
    assert (over.d_model, over.num_layers, over.subsampling, over.num_heads) == (32, 2, 8, 4)
    with pytest.raises(TypeError):
        conformer_tiny(not_a_field=1)


def test_bad_subsampling_rejected() -> None:
    with pytest.raises(ValueError, match="subsampling"):
        ConvSubsampling(80, 32, 3)


# ---------------------------------------------------------------- shapes


@pytest.mark.parametrize("subsampling", [4, 8])
def test_encoder_shapes_and_lengths(subsampling: int) -> None:
    enc = _tiny_encoder(subsampling)
    lens = torch.tensor([100, 77, 1, 64])
    with torch.no_grad():
        out, out_lens = enc(torch.randn(4, 100, 16), lens)
    expected = [_sub_len(int(n), subsampling) for n in lens]
    assert out_lens.tolist() == expected
    assert out.shape == (4, max(expected), 32)
    assert torch.isfinite(out).all()
    # Hand-checked values: 100 -> 50 -> 25 (-> 13), 77 -> 39 -> 20 (-> 10).
    assert expected[:2] == ([25, 20] if subsampling == 4 else [13, 10])


@pytest.mark.parametrize("subsampling", [4, 8])
def test_ctc_model_shapes_and_log_probs(subsampling: int) -> None:
    model = _tiny_model(subsampling, vocab=12)
    wave_lens = torch.tensor([16_000, 12_000, 8_003])
    waves = torch.randn(3, 16_000) * 0.1
    for i, n in enumerate(wave_lens.tolist()):
        waves[i, n:] = 0
    with torch.no_grad():
        logp, lens = model(waves, wave_lens)
    # 16000 samples -> 101 frames -> 51 -> 26 (-> 13); 12000 -> 76 -> 38 -> 19 (-> 10); 8003 -> 51 -> 26 -> 13 (-> 7).
    expected = [26, 19, 13] if subsampling == 4 else [13, 10, 7]
    assert lens.tolist() == expected
    assert [_sub_len(n // HOP + 1, subsampling) for n in wave_lens.tolist()] == expected
    assert logp.shape == (3, expected[0], 12)
    assert logp.dtype == torch.float32
    torch.testing.assert_close(logp.exp().sum(-1), torch.ones(3, expected[0]), atol=1e-5, rtol=0)
    assert (logp <= 0).all()


# ---------------------------------------------------------------- padding masks


def _padded_vs_alone_encoder(enc: ConformerEncoder, n: int, pad_value: str) -> float:
    total = 97
    x = torch.randn(1, n, 16)
    batch = torch.zeros(2, total, 16) if pad_value == "zeros" else torch.randn(2, total, 16) * 5
    batch[0, :n] = x[0]
    batch[1] = torch.randn(total, 16)
    with torch.no_grad():
        alone, alone_lens = enc(x, torch.tensor([n]))
        padded, padded_lens = enc(batch, torch.tensor([n, total]))
    assert padded_lens[0] == alone_lens[0]
    t = int(alone_lens[0])
    return float((alone[0] - padded[0, :t]).abs().max())


@pytest.mark.parametrize("subsampling", [4, 8])
def test_attention_key_padding_mask(subsampling: int) -> None:
    # With a pointwise conv module (kernel 1) and lengths that halve evenly, only self-attention
    # mixes time steps, so even garbage in the padding must not reach the real frames.
    enc = _tiny_encoder(subsampling, conv_kernel=1)
    for n in (32, 48, 64):
        assert _padded_vs_alone_encoder(enc, n, "garbage") < 1e-4


def test_attention_mask_is_needed() -> None:
    # Sanity check of the test above: without the mask, padding does leak into the real frames.
    enc = _tiny_encoder(4, conv_kernel=1)
    x = torch.randn(1, 32, 16)
    batch = torch.randn(2, 97, 16) * 5
    batch[0, :32] = x[0]
    with torch.no_grad():
        alone, _ = enc(x, torch.tensor([32]))
        leaky, _ = enc(batch, torch.tensor([97, 97]))  # pretend the padding is real
    assert float((alone[0] - leaky[0, :8]).abs().max()) > 1e-2


@pytest.mark.parametrize("subsampling", [4, 8])
def test_encoder_padded_equals_alone(subsampling: int) -> None:
    # LogMel zeroes the padding frames, so zeros are what the encoder receives there.
    enc = _tiny_encoder(subsampling, conv_kernel=15)
    for n in (40, 37, 65):
        assert _padded_vs_alone_encoder(enc, n, "zeros") < 1e-4, n


@pytest.mark.parametrize("subsampling", [4, 8])
def test_ctc_model_padded_equals_alone(subsampling: int) -> None:
    model = _tiny_model(subsampling)
    n, total = 8_123, 20_000
    wave = torch.randn(1, n) * 0.1  # no silent tail: the front-end must zero-pad like a batch does
    batch = torch.zeros(2, total)
    batch[0, :n] = wave[0]
    batch[1] = torch.randn(total) * 0.1
    with torch.no_grad():
        alone, alone_lens = model(wave, torch.tensor([n]))
        padded, padded_lens = model(batch, torch.tensor([n, total]))
    t = int(alone_lens[0])
    assert int(padded_lens[0]) == t
    torch.testing.assert_close(padded[0, :t], alone[0], atol=1e-4, rtol=0)


# ---------------------------------------------------------------- upsampled output frames


def test_upsampled_encoder_splits_each_frame_starting_as_copies() -> None:
    torch.manual_seed(0)
    cfg = conformer(n_mels=16, d_model=32, num_layers=2, num_heads=4, conv_kernel=15, upsample=2)
    enc = ConformerEncoder(cfg).eval()
    lens = torch.tensor([100, 77, 1])
    feats = torch.randn(3, 100, 16)
    with torch.no_grad():
        out, out_lens = enc(feats, lens)
        enc.upsample.weight.add_(0.01 * torch.randn_like(enc.upsample.weight))
        trained, _ = enc(feats, lens)
    assert out_lens.tolist() == [2 * _sub_len(int(n), 4) for n in lens] == [50, 40, 2]
    assert out.shape == (3, 50, 32)
    torch.testing.assert_close(out[:, 0::2], out[:, 1::2], atol=0, rtol=0)  # a fresh split copies each frame
    assert not torch.allclose(trained[:, 0::2], trained[:, 1::2], atol=1e-3)  # a trained one need not
    for n in (40, 37, 65):
        assert _padded_vs_alone_encoder(enc, n, "zeros") < 1e-4, n
    with pytest.raises(ValueError, match="upsample"):
        ConformerEncoder(conformer(upsample=0))


def test_upsampling_gives_ctc_room_for_fast_speech() -> None:
    # 1 s of audio is 26 frames after 4x subsampling: 30 characters do not fit, and CTC has no path at all.
    wave, wave_lens = torch.randn(1, 16_000) * 0.1, torch.tensor([16_000])
    targets, target_lens = torch.randint(2, 12, (1, 30)), torch.tensor([30])
    losses = {}
    for k in (1, 2):
        logp, lens = _tiny_model(upsample=k)(wave, wave_lens)
        assert lens.tolist() == [26 * k] and logp.shape == (1, 26 * k, 12)
        losses[k] = float(torch.nn.functional.ctc_loss(logp.transpose(0, 1), targets, lens, target_lens, blank=0))
    assert losses[1] == float("inf") and math.isfinite(losses[2])


def test_upsampled_model_round_trips_through_the_hub(tmp_path: Path) -> None:
    model = _tiny_model(upsample=2)
    with torch.no_grad():
        model.encoder.upsample.weight.add_(0.01 * torch.randn_like(model.encoder.upsample.weight))
    save_pretrained(model, CharVocab(list("abcdefghi")), tmp_path / "m")
    transcriber = Transcriber.from_pretrained(tmp_path / "m")
    assert transcriber.frame_seconds == 0.02  # 25 encoder frames a second, each split in two
    wave = np.random.default_rng(0).standard_normal(12_000).astype(np.float32) * 0.1
    with torch.no_grad():
        want, _ = model(torch.from_numpy(wave)[None], torch.tensor([12_000]))
    got, lens = transcriber.log_probs([wave])
    torch.testing.assert_close(got[0, : int(lens[0])], want[0], atol=1e-5, rtol=0)


def test_upsampling_starts_at_the_configured_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    module = ASRModule(encoder={"d_model": 32, "num_layers": 1, "num_heads": 2, "conv_kernel": 5, "upsample": 2},
                       vocab=list("ab"), upsample_from_epoch=2)
    wave, wave_lens = torch.randn(1, 16_000) * 0.1, torch.tensor([16_000])
    seen = []
    for epoch in range(4):
        monkeypatch.setattr(ASRModule, "current_epoch", property(lambda self, e=epoch: e))
        module.train().on_train_epoch_start()
        train_lens = int(module.net(wave, wave_lens)[1])
        seen.append((train_lens, int(module.eval().net(wave, wave_lens)[1])))
    assert seen == [(26, 52), (26, 52), (52, 52), (52, 52)]  # outside training the frames are always split


def test_decode_hop_reads_finer_frames_outside_training_and_round_trips(tmp_path: Path) -> None:
    model = _tiny_model()
    wave, wave_lens = torch.randn(1, 16_000) * 0.1, torch.tensor([16_000])
    assert int(model(wave, wave_lens)[1]) == 26  # 101 log-mel frames of 10 ms -> 51 -> 26
    model.set_decode_hop(8.0)
    with torch.no_grad():
        want, lens = model(wave, wave_lens)
    assert int(lens) == 32  # 126 frames of 8 ms -> 63 -> 32
    assert int(model.train()(wave, wave_lens)[1]) == 26  # training keeps its own hop
    save_pretrained(model.eval(), CharVocab(list("abcdefghi")), tmp_path / "m")
    transcriber = Transcriber.from_pretrained(tmp_path / "m")
    assert transcriber.model.cfg.decode_hop_ms == 8.0 and transcriber.frame_seconds == 0.032
    got, got_lens = transcriber.log_probs([wave[0].numpy()])
    torch.testing.assert_close(got[0, : int(got_lens[0])], want[0], atol=1e-5, rtol=0)
    model.set_decode_hop(None)
    assert int(model(wave, wave_lens)[1]) == 26 and model.cfg.decode_hop_ms is None
    with pytest.raises(ValueError, match="hop"):
        model.set_decode_hop(30.0)  # longer than the 25 ms window
    with pytest.raises(ValueError, match="decode_hop_ms"):
        CTCModelConfig(vocab_size=12, encoder=wav2vec2_tiny(), encoder_type="wav2vec2", decode_hop_ms=8.0)


# ---------------------------------------------------------------- head growth


def test_resize_head_keeps_old_rows() -> None:
    model = _tiny_model(vocab=10)
    old_w = model.head.weight.detach().clone()
    old_b = model.head.bias.detach().clone()
    hidden = torch.randn(2, 5, 32)
    with torch.no_grad():
        before = model.head(hidden)
    model.resize_head(14)
    assert model.head.weight.shape == (14, 32) and model.head.bias.shape == (14,)
    assert model.head.out_features == 14 and model.cfg.vocab_size == 14
    torch.testing.assert_close(model.head.weight[:10], old_w, atol=0, rtol=0)
    torch.testing.assert_close(model.head.bias[:10], old_b, atol=0, rtol=0)
    with torch.no_grad():
        after = model.head(hidden)
        logp, _ = model(torch.randn(1, 4_000) * 0.1, torch.tensor([4_000]))
    torch.testing.assert_close(after[..., :10], before, atol=1e-5, rtol=0)
    assert logp.shape[-1] == 14
    assert model.head.weight.requires_grad
    assert any(p is model.head.weight for p in model.parameters())


def test_resize_head_same_size_and_shrink() -> None:
    model = _tiny_model(vocab=10)
    w = model.head.weight.detach().clone()
    model.resize_head(10)
    torch.testing.assert_close(model.head.weight, w, atol=0, rtol=0)
    with pytest.raises(ValueError, match="grow"):
        model.resize_head(9)
    assert model.head.out_features == 10 and model.cfg.vocab_size == 10


# ---------------------------------------------------------------- determinism


def test_same_seed_same_model_and_outputs() -> None:
    wave = torch.randn(2, 6_400) * 0.1
    lens = torch.tensor([6_400, 5_000])
    a, b = _tiny_model(seed=0), _tiny_model(seed=0)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    with torch.no_grad():
        out_a, lens_a = a(wave, lens)
        out_b, lens_b = b(wave, lens)
        again, _ = a(wave, lens)
    assert torch.equal(lens_a, lens_b)
    torch.testing.assert_close(out_a, out_b, atol=0, rtol=0)
    torch.testing.assert_close(out_a, again, atol=0, rtol=0)  # eval mode: no dropout, no SpecAugment
    # Another seed really is another model.
    with torch.no_grad():
        out_c, _ = _tiny_model(seed=1)(wave, lens)
    assert not torch.allclose(out_a, out_c, atol=1e-3)


def test_train_mode_is_stochastic() -> None:
    model = _tiny_model().train()
    wave = torch.randn(1, 6_400) * 0.1
    lens = torch.tensor([6_400])
    torch.manual_seed(1)
    with torch.no_grad():
        first, _ = model(wave, lens)
        second, _ = model(wave, lens)
    assert not torch.allclose(first, second)


def test_gradients_reach_every_parameter() -> None:
    model = _tiny_model().train()
    logp, lens = model(torch.randn(2, 4_800) * 0.1, torch.tensor([4_800, 3_200]))
    targets = torch.randint(2, 12, (2, 4))
    loss = torch.nn.functional.ctc_loss(
        logp.transpose(0, 1), targets, lens, torch.tensor([4, 3]), blank=0, zero_infinity=True
    )
    loss.backward()
    assert torch.isfinite(loss)
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert missing == []


def test_feature_tempo_resamples_frames_in_time() -> None:
    feats = torch.randn(2, 40, 8)
    lens = torch.tensor([40, 30])
    feats[1, 30:] = 0
    fast = SpecAugment(tempo_prob=1.0, tempo=(2.0, 2.0)).train()
    out, new = fast.stretch(feats, lens)
    assert new.tolist() == [20, 15]
    torch.testing.assert_close(out[0], feats[0, ::2])  # twice as fast: every other frame
    torch.testing.assert_close(out[1, :15], feats[1, :30:2])
    slow = SpecAugment(tempo_prob=1.0, tempo=(0.5, 0.5)).train()
    out, new = slow.stretch(feats, lens)
    assert new.tolist() == [80, 60] and out.shape[1] == 80
    torch.testing.assert_close(out[0, 1:78:2], (feats[0, :39] + feats[0, 1:40]) / 2)  # midpoints between frames
    assert out[1, 60:].abs().sum() == 0  # padding stays zero
    # Eval mode, or no chance: the batch untouched.
    for m in (SpecAugment(tempo_prob=1.0).eval(), SpecAugment(tempo_prob=0.0).train()):
        same, same_lens = m.stretch(feats, lens)
        assert same is feats and same_lens is lens
    with pytest.raises(ValueError, match="tempo"):
        SpecAugment(tempo_prob=0.5, tempo=(1.2, 0.8))


def test_ctc_model_trains_on_stretched_features() -> None:
    cfg = CTCModelConfig(vocab_size=12, encoder=conformer_tiny(d_model=32, num_layers=1, num_heads=2),
                         specaug=SpecAugmentConfig(freq_masks=0, time_masks=0, tempo_prob=1.0, tempo=(1.5, 1.5)))
    model = CTCModel(cfg).train()
    wave = torch.randn(2, 16000)
    _, lens = model(wave, torch.tensor([16000, 8000]))
    _, eval_lens = model.eval()(wave, torch.tensor([16000, 8000]))
    assert (lens < eval_lens).all()  # faster speech: fewer encoder frames, and the CTC loss gets those lengths


def test_specaug_starts_at_the_configured_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    module = ASRModule(encoder={"d_model": 32, "num_layers": 1, "num_heads": 2, "conv_kernel": 5}, vocab=list("ab"),
                       specaug={"tempo_prob": 1.0, "tempo": (2.0, 2.0)}, specaug_from_epoch=2).train()
    feats, lens = torch.randn(1, 40, 80), torch.tensor([40])
    seen = []
    for epoch in range(4):
        monkeypatch.setattr(ASRModule, "current_epoch", property(lambda self, e=epoch: e))
        module.on_train_epoch_start()
        seen.append(int(module.net.specaug.stretch(feats, lens)[1]))
    assert seen == [40, 40, 20, 20]
