"""The wav2vec2 encoder: named sizes, exact padding, SSL pieces, CTC training and model directories."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from common.hub import MODEL_TYPES
from speech.asr.config import CTCModelConfig
from speech.asr.hub import load_model, save_pretrained
from speech.asr.model import CTCModel
from speech.asr.precision import with_precision
from speech.encoders.wav2vec2 import Wav2Vec2Encoder, mms_1b, wav2vec2_base, wav2vec2_tiny, xlsr_300m
from tests.helpers import compose_cfg, load_script, tiny_overrides
from text.char_vocab import CharVocab


def _tiny(norm: str, **kw: object) -> Wav2Vec2Encoder:
    torch.manual_seed(0)
    cfg = wav2vec2_tiny(feature_norm=norm, pre_norm=norm == "layer", conv_bias=norm == "layer",
                        num_layers=2, dropout=0.0, attention_dropout=0.0, **kw)
    return Wav2Vec2Encoder(cfg).eval()


@pytest.mark.parametrize(("size", "millions"), [(wav2vec2_base, 94.37), (xlsr_300m, 315.44), (mms_1b, 962.50)])
def test_named_sizes_have_the_published_parameter_counts(size, millions: float) -> None:
    with torch.device("meta"):
        enc = Wav2Vec2Encoder(size())
    # transformers' counts, less the 128 weight-norm gains that the suite folds into the positional conv
    assert sum(p.numel() for p in enc.parameters()) / 1e6 == pytest.approx(millions, abs=0.01)


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_padded_utterance_gives_the_frames_it_gives_alone(norm: str) -> None:
    enc = _tiny(norm, normalize_wave=True)
    lens = torch.tensor([16_000, 9_000, 4_321])
    wave = torch.randn(3, 16_000) * (torch.arange(16_000)[None] < lens[:, None])
    wave[1:, 12_000:] = 7.0  # garbage in the padding must not matter
    with torch.no_grad():
        batched, out_lens = enc(wave, lens)
        for b, n in enumerate(lens.tolist()):
            alone, alone_lens = enc(wave[b : b + 1, :n], lens[b : b + 1])
            assert int(out_lens[b]) == int(alone_lens[0]) == alone.shape[1] == n // 320 - (1 if n % 320 < 80 else 0)
            torch.testing.assert_close(batched[b, : out_lens[b]], alone[0], atol=1e-5, rtol=1e-4)


def test_output_lengths_follow_the_conv_stack() -> None:
    enc = _tiny("layer")
    for n in (400, 401, 719, 720, 16_000, 48_123):
        feats, lens = enc.extract_features(torch.randn(1, n), torch.tensor([n]))
        assert feats.shape[1] == int(lens[0]) == int(enc.output_lens(torch.tensor([n]))[0])


def test_ssl_pieces_compose_to_forward() -> None:
    enc = _tiny("layer")
    wave, lens = torch.randn(2, 8_000), torch.tensor([8_000, 6_000])
    with torch.no_grad():
        feats, flens = enc.extract_features(wave, lens)  # [B, T, C]
        x, normed = enc.project(feats)
        assert feats.shape[-1] == normed.shape[-1] == enc.cfg.conv_dims[-1] and x.shape[-1] == enc.cfg.d_model
        mask = torch.zeros(x.shape[:2], dtype=torch.bool)
        mask[:, 3:7] = True
        masked = enc.apply_mask(x, mask)
        assert torch.equal(masked[:, 3:7], enc.mask_emb.expand(2, 4, -1)) and torch.equal(masked[:, 7:], x[:, 7:])
        full, _ = enc(wave, lens, mask)
        torch.testing.assert_close(full, enc.contextualize(masked, flens))
        assert not torch.allclose(full, enc(wave, lens)[0])  # the mask changes the context


def test_ctc_model_over_wav2vec2_round_trips_through_a_model_directory(tmp_path: Path) -> None:
    vocab = CharVocab(list("abcdef"))
    model = CTCModel(CTCModelConfig(vocab_size=len(vocab), encoder=wav2vec2_tiny(num_layers=1),
                                    encoder_type="wav2vec2")).eval()
    wave, lens = torch.randn(2, 6_000), torch.tensor([6_000, 5_000])
    with torch.no_grad():
        logp, out_lens = model(wave, lens, langs=["deu_Latn", None])
    assert logp.shape[:2] == (2, int(out_lens.max())) and logp.dtype == torch.float32
    torch.testing.assert_close(logp.exp().sum(-1), torch.ones(logp.shape[:2]))
    assert {"ctc_conformer", "ctc_wav2vec2"} <= set(MODEL_TYPES.names())
    save_pretrained(model, vocab, tmp_path / "m")
    loaded, loaded_vocab = load_model(tmp_path / "m")
    assert loaded.model_type == "ctc_wav2vec2" and loaded_vocab.tokens == vocab.tokens
    with torch.no_grad():
        torch.testing.assert_close(loaded(wave, lens)[0], logp)


def test_encoder_kind_must_match_its_config() -> None:
    with pytest.raises(TypeError, match="Wav2Vec2Config"):
        CTCModelConfig(vocab_size=5, encoder_type="wav2vec2")
    with pytest.raises(ValueError, match="encoder_type"):
        CTCModelConfig(vocab_size=5, encoder_type="wav2vec")


def test_wav2vec2_model_config_trains_with_fast_dev_run(tiny_corpus: Path, tmp_path: Path) -> None:
    overrides = [o for o in tiny_overrides(tiny_corpus) if not o.startswith("+model.encoder.")]
    overrides += ["model=asr_wav2vec2_tiny", "debug=fdr", "+model.encoder.num_layers=1", "export=true"]
    cfg = compose_cfg("train", overrides, tmp_path)
    metrics = load_script("train").train(cfg)
    assert metrics["train/loss"] > 0


def test_lightning_checkpoint_of_a_wav2vec2_module_loads(tmp_path: Path) -> None:
    from speech.asr.module import ASRModule

    module = ASRModule(wav2vec2_tiny(num_layers=1), CharVocab(list("abc")), encoder_type="wav2vec2")
    torch.save({"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()}, tmp_path / "m.ckpt")
    model, vocab = load_model(tmp_path / "m.ckpt")
    assert model.model_type == "ctc_wav2vec2" and vocab.tokens == module.vocab.tokens
    for k, v in module.net.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k


def test_utterances_shorter_than_one_frame_get_no_frames() -> None:
    enc = _tiny("group")
    assert enc.feature_extractor.receptive_field() == 400
    with torch.no_grad():
        x, lens = enc(torch.randn(2, 300), torch.tensor([300, 120]))
        assert x.shape[0] == 2 and torch.isfinite(x).all()
        assert lens.tolist() == [0, 0]
        _, lens = enc(torch.randn(2, 1_000), torch.tensor([1_000, 100]))
        assert lens.tolist() == [2, 0]


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_inference_conv_path_matches_the_batched_training_path(norm: str) -> None:
    enc = _tiny(norm, normalize_wave=True)
    lens = torch.tensor([12_000, 7_777, 300])
    wave = torch.randn(3, 12_000) * (torch.arange(12_000)[None] < lens[:, None])
    with torch.no_grad():  # per utterance, normalised and activated in place
        each, each_lens = enc.extract_features(wave, lens)
    batched, batched_lens = enc.extract_features(wave, lens)  # grad enabled: the batched path
    assert each.shape == batched.shape and each_lens.tolist() == batched_lens.tolist() == [37, 24, 0]
    for b, n in enumerate(each_lens.tolist()):
        torch.testing.assert_close(each[b, :n], batched[b, :n].detach(), atol=1e-5, rtol=1e-4)
        assert not each[b, n:].any()  # frames past the end are zeros


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_bf16_inference_unfolds_each_convolution_into_one_matmul(norm: str) -> None:
    enc = _tiny(norm, normalize_wave=True)
    lens = torch.tensor([12_000, 7_777, 300])
    wave = torch.randn(3, 12_000)
    with torch.no_grad():
        for conv in enc.feature_extractor.convs:  # trained-like biases, so the unfolded path must add them too
            if conv.bias is not None:
                torch.nn.init.normal_(conv.bias, std=0.1)
        if norm == "group":  # the group norm's statistics: first-layer filters that sum to ~0 (band-pass, as learnt)
            w0 = enc.feature_extractor.convs[0].weight  # on a low voice make each channel's variance a small
            w0 -= 0.99 * w0.mean(-1, keepdim=True)  # difference of large sums, which bf16 statistics would spoil
            t = torch.arange(12_000) / 16_000
            wave = torch.sin(2 * torch.pi * 120 * t) + 0.5 * torch.sin(2 * torch.pi * 240 * t) + 0.01 * wave
    wave = wave * (torch.arange(12_000)[None] < lens[:, None])
    calls: list[object] = []
    conv0 = enc.feature_extractor.convs[0]
    conv0.register_forward_hook(lambda *_: calls.append(1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        convs, _ = enc.extract_features(wave, lens)  # grad enabled: the batched path, bf16 convolutions
    with torch.no_grad():
        ref, ref_lens = enc.extract_features(wave, lens)  # fp32 convolutions
        assert calls
        calls.clear()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast, fast_lens = enc.extract_features(wave, lens)
    assert not calls  # no convolution module ran: every layer was a matmul over unfolded windows
    assert fast.dtype == torch.bfloat16 and fast.shape == ref.shape and fast_lens.tolist() == ref_lens.tolist()
    assert ref_lens.tolist() == [37, 24, 0]
    for b, n in enumerate(ref_lens.tolist()[:2]):  # bf16 rounding as in bf16 convolutions, no worse
        err, conv_err = ((x[b, :n].detach().float() - ref[b, :n]).norm() for x in (fast, convs))
        assert err < 1.5 * conv_err
    assert not fast[1, 24:].any() and not fast[2].any()  # frames past the end are zeros


def test_bf16_inference_runs_few_matmul_shapes_whatever_the_lengths() -> None:
    enc = _tiny("group")
    fe = enc.feature_extractor
    frames = range(1, 3_001)
    sizes = {f: fe.output_lens(torch.tensor(fe._bucket_samples(f))).item() for f in frames}
    assert all(f <= sizes[f] <= f + max(1, f // 8) for f in frames)  # at most 1/8 more frames than needed
    assert len(set(sizes.values())) <= 16 + 8 * 8  # 8 sizes an octave (exact below 16 frames), not 3,000
    for n in range(400, 20_000, 37):  # padded, never cut: samples past the last frame count in the norm statistics
        assert fe._bucket_samples(int(fe.output_lens(torch.tensor(n)))) >= n
    shapes: set[tuple[int, ...]] = set()
    mm = torch.Tensor.__matmul__
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        def record(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # bf16 runs on oneDNN (fp32 statistics: BLAS)
            if a.dtype == torch.bfloat16:
                shapes.add(tuple(a.shape))
            return mm(a, b)

        torch.Tensor.__matmul__ = record  # type: ignore[method-assign]
        try:
            for n in range(10_640, 11_920, 128):  # ten lengths of 33-36 frames: one bucket, 36 frames
                enc.extract_features(torch.randn(1, n), torch.tensor([n]))
        finally:
            torch.Tensor.__matmul__ = mm  # type: ignore[method-assign]
    assert 0 < len(shapes) <= len(enc.cfg.conv_kernels)


def test_unpadded_batch_attends_without_a_mask_and_gives_the_masked_result() -> None:
    enc = _tiny("group")
    x, lens = torch.randn(2, 50, enc.cfg.d_model), torch.tensor([50, 50])
    seen: list[object] = []
    enc.layers[0].attn.register_forward_pre_hook(lambda _, args: seen.append(args[1]))
    with torch.no_grad():
        fast = enc.contextualize(x, lens)
        masked = enc.contextualize(torch.cat([x, torch.randn(2, 1, enc.cfg.d_model)], 1), lens)
    assert seen[0] is None and isinstance(seen[1], torch.Tensor)
    torch.testing.assert_close(fast, masked[:, :50], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_reduced_precision_modes_stay_close_to_fp32(precision: str) -> None:
    torch.manual_seed(0)
    cfg = CTCModelConfig(vocab_size=12, encoder_type="wav2vec2",
                         encoder=wav2vec2_tiny(num_layers=2, dropout=0.0, attention_dropout=0.0))
    model = CTCModel(cfg).eval()
    wave, lens = torch.randn(2, 8_000) * 0.1, torch.tensor([8_000, 5_000])
    with torch.no_grad():
        ref, ref_lens = model(wave, lens)
        fast, run = with_precision(copy.deepcopy(model), precision)
        with run():
            out, out_lens = fast(wave, lens)
    assert out.dtype == torch.float32 and out.shape == ref.shape and out_lens.tolist() == ref_lens.tolist()
    assert (out - ref).abs().max() < 0.2  # close, not exact: these modes are never the default
    if precision == "int8":
        assert not any(type(m) is torch.nn.Linear for m in fast.modules())
    else:  # cast once, not by autocast at every batch
        assert all(m.weight.dtype == torch.bfloat16 for m in fast.modules() if isinstance(m, torch.nn.Linear))


def test_unknown_precision_is_named() -> None:
    with pytest.raises(ValueError, match="fp16"):
        with_precision(torch.nn.Linear(2, 2), "fp16")
