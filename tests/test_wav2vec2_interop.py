"""Interop: transformers Wav2Vec2ForCTC <-> suite (logit parity, export), fairseq2 key mapping round trip."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import Wav2Vec2Config as HFConfig
from transformers import Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC

from speech.asr.config import CTCModelConfig
from speech.asr.ctc import greedy_decode
from speech.asr.hub import load_model
from speech.asr.infer import Transcriber
from speech.asr.interop import fairseq2 as fs2
from speech.asr.interop.hf import export_hf, load_hf, load_hf_encoder, main
from speech.asr.model import CTCModel
from speech.encoders.wav2vec2 import TransformerLayer, Wav2Vec2Config, Wav2Vec2Encoder, wav2vec2_tiny, xlsr_300m
from speech.features import pad_waves
from text.char_vocab import CharVocab

TOKENS = ["<pad>", "<s>", "</s>", "<unk>", "|", *"abcdefgh"]


def _hf_dir(tmp_path: Path, norm: str) -> tuple[Path, Wav2Vec2ForCTC, Wav2Vec2FeatureExtractor]:
    """A tiny random Wav2Vec2ForCTC with tokenizer and feature extractor, saved the way the hub has them."""
    torch.manual_seed(0)
    d = tmp_path / f"hf_{norm}"
    d.mkdir()
    (d / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(TOKENS)}))
    stable = norm == "layer"
    cfg = HFConfig(vocab_size=len(TOKENS), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                   intermediate_size=64, conv_dim=(16, 16, 16), conv_kernel=(10, 3, 2), conv_stride=(5, 2, 2),
                   num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, feat_extract_norm=norm,
                   do_stable_layer_norm=stable, conv_bias=stable)
    model = Wav2Vec2ForCTC(cfg).eval()
    with torch.no_grad():  # move every weight off its init value so a mis-mapped key shows
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.save_pretrained(d)
    Wav2Vec2CTCTokenizer(str(d / "vocab.json")).save_pretrained(d)
    fe = Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=stable)
    fe.save_pretrained(d)
    return d, model, fe


def _waves() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [(rng.standard_normal(n) * 0.3 + 0.05).astype(np.float32) for n in (4_000, 2_613, 1_200)]


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_imported_model_matches_transformers_logits(norm: str, tmp_path: Path) -> None:
    d, ref, fe = _hf_dir(tmp_path, norm)
    model, vocab = load_hf(d)
    assert vocab.blank_id == 0 and vocab.unk_id == 3 and vocab.tokens[4] == " " and vocab.tokens[5] == "a"
    assert model.cfg.encoder.normalize_wave
    waves = _waves()
    with torch.no_grad():
        for w in waves:  # one at a time: transformers has no padding mask for group norm
            x = fe(w, sampling_rate=16_000, return_tensors="pt").input_values
            expected = ref(x).logits.log_softmax(-1)[0]
            got, lens = model(torch.from_numpy(w)[None], torch.tensor([len(w)]))
            assert got.shape[1] == expected.shape[0] == int(lens[0])
            assert (got[0] - expected).abs().max() < 1e-4
        if norm == "layer":  # batched with padding and an attention mask
            x = fe(waves, sampling_rate=16_000, return_tensors="pt", padding=True, return_attention_mask=True)
            expected = ref(x.input_values, attention_mask=x.attention_mask).logits.log_softmax(-1)
            got, lens = model(*pad_waves(waves))
            for b, n in enumerate(lens.tolist()):
                assert (got[b, :n] - expected[b, :n]).abs().max() < 1e-4


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_encoder_alone_loads_from_a_transformers_directory(norm: str, tmp_path: Path) -> None:
    d, ref, fe = _hf_dir(tmp_path, norm)
    enc = load_hf_encoder(d)
    w = _waves()[0]
    with torch.no_grad():
        expected = ref.wav2vec2(fe(w, sampling_rate=16_000, return_tensors="pt").input_values).last_hidden_state
        got, _ = enc(torch.from_numpy(w)[None], torch.tensor([len(w)]))
    assert (got - expected).abs().max() < 1e-4


def test_greedy_transcripts_match_the_transformers_tokenizer(tmp_path: Path) -> None:
    d, ref, fe = _hf_dir(tmp_path, "layer")
    with torch.no_grad():  # make the random head prefer a few letters, spaces and blanks
        ref.lm_head.bias[:] = -5.0
        ref.lm_head.bias[[0, 4, 5, 6, 7]] = 2.0
    ref.save_pretrained(d)
    tok = Wav2Vec2CTCTokenizer.from_pretrained(d)
    transcriber = Transcriber(*load_hf(d))
    for w in _waves():
        with torch.no_grad():
            ids = ref(fe(w, sampling_rate=16_000, return_tensors="pt").input_values).logits.argmax(-1)[0]
        expected = " ".join(tok.decode(ids.tolist()).split())
        assert transcriber.transcribe([w]) == [expected]
        assert expected  # not a trivially empty comparison


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_export_loads_in_transformers_and_matches(norm: str, tmp_path: Path) -> None:
    torch.manual_seed(1)
    vocab = CharVocab(list("abcdé"))
    enc = wav2vec2_tiny(num_layers=1, feature_norm=norm, pre_norm=norm == "layer", conv_bias=norm == "layer")
    model = CTCModel(CTCModelConfig(vocab_size=len(vocab), encoder=enc, encoder_type="wav2vec2")).eval()
    out = export_hf(model, vocab, tmp_path / "hf")
    hf = Wav2Vec2ForCTC.from_pretrained(out).eval()
    tok = Wav2Vec2CTCTokenizer.from_pretrained(out)
    fe = Wav2Vec2FeatureExtractor.from_pretrained(out)
    assert tok.convert_tokens_to_ids(list("abcdé")) == [vocab.index[c] for c in "abcdé"]
    assert tok.pad_token_id == vocab.blank_id and tok.word_delimiter_token_id == vocab.index[" "]
    w = _waves()[0]
    with torch.no_grad():
        expected = hf(fe(w, sampling_rate=16_000, return_tensors="pt").input_values).logits.log_softmax(-1)
        got, _ = model(torch.from_numpy(w)[None], torch.tensor([len(w)]))
    assert (got - expected).abs().max() < 1e-4
    # And back: the exported directory imports to the same network.
    again, again_vocab = load_hf(out)
    torch.testing.assert_close(again(torch.from_numpy(w)[None], torch.tensor([len(w)]))[0], got)
    assert greedy_decode(got, torch.tensor([got.shape[1]]), vocab) == greedy_decode(
        got, torch.tensor([got.shape[1]]), again_vocab)


def test_cli_imports_into_a_suite_directory_and_exports_back(tmp_path: Path) -> None:
    d, _, _ = _hf_dir(tmp_path, "layer")
    main([f"import={d}", f"output={tmp_path / 'suite'}"])
    _, vocab = load_model(tmp_path / "suite")
    assert json.loads((tmp_path / "suite" / "config.json").read_text())["model_type"] == "ctc_wav2vec2"
    assert vocab.decode([5, 4, 6, 3, 1]) == "a b"  # <unk> and <s> are silent, "|" is a space
    main([f"export={tmp_path / 'suite'}", f"output={tmp_path / 'back'}"])
    assert json.loads((tmp_path / "back" / "vocab.json").read_text()) == {t: i for i, t in enumerate(TOKENS)}
    with pytest.raises(SystemExit, match="output= required"):
        main([f"import={d}"])


def test_multilingual_vocab_needs_a_target_language(tmp_path: Path) -> None:
    d, _, _ = _hf_dir(tmp_path, "layer")
    table = {t: i for i, t in enumerate(TOKENS)}
    (d / "vocab.json").write_text(json.dumps({"deu": table, "ukr": {**table, "a": 5}}))
    with pytest.raises(ValueError, match="target_lang"):
        load_hf(d)
    assert load_hf(d, target_lang="ukr")[1].tokens[5] == "a"


def test_unsupported_transformers_config_is_named(tmp_path: Path) -> None:
    d, _, _ = _hf_dir(tmp_path, "layer")
    cfg = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**cfg, "adapter_attn_dim": 16}))
    with pytest.raises(ValueError, match="adapter_attn_dim"):
        load_hf(d)


# ---------------------------------------------------------------- fairseq2

OMNI_300M = {  # fairseq2 Wav2Vec2EncoderConfig of omniASR_CTC_300M
    "model_dim": 1024, "feature_extractor_layer_descs": [[512, 10, 5]] + [[512, 3, 2]] * 4 + [[512, 2, 2]] * 2,
    "feature_extractor_bias": True, "feature_extractor_layer_norm_convs": True, "use_fbank": False,
    "pos_encoder_type": "conv", "pos_encoder_depth": 1, "pos_conv_kernel_size": 128, "num_pos_conv_groups": 16,
    "use_conformer": False, "num_encoder_layers": 24, "num_encoder_attn_heads": 16, "ffn_inner_dim": 4096,
    "dropout_p": 0.0, "attn_dropout_p": 0.0, "norm_order": "PRE", "layer_norm_features": False,
}


def _fairseq2_state(layer_norm: bool, d: int = 16, c: int = 8, f: int = 24, k: int = 4, g: int = 2,
                    v: int = 9) -> dict[str, torch.Tensor]:
    """A fairseq2 Wav2Vec2AsrModel state dict written from fairseq2's module names, with its shapes."""
    gen = torch.Generator().manual_seed(0)

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen)

    fe = "encoder_frontend.feature_extractor.layers"
    sd = {f"{fe}.0.conv.weight": r(c, 1, 10), f"{fe}.1.conv.weight": r(c, c, 3), f"{fe}.2.conv.weight": r(c, c, 2)}
    if layer_norm:
        sd |= {f"{fe}.{i}.conv.bias": r(c) for i in range(3)}
        sd |= {f"{fe}.{i}.layer_norm.{p}": r(c) for i in range(3) for p in ("weight", "bias")}
        sd |= {f"encoder.layer_norm.{p}": r(d) for p in ("weight", "bias")}
    else:
        sd |= {f"{fe}.0.group_norm.{p}": r(c) for p in ("weight", "bias")}
        sd |= {f"encoder_frontend.layer_norm.{p}": r(d) for p in ("weight", "bias")}
    sd |= {f"encoder_frontend.post_extract_layer_norm.{p}": r(c) for p in ("weight", "bias")}
    sd |= {           "encoder_frontend.model_dim_proj.weight": r(d, c), "encoder_frontend.model_dim_proj.bias": r(d),
           "encoder_frontend.pos_encoder.conv.weight_g": r(1, 1, k).abs(),
           "encoder_frontend.pos_encoder.conv.weight_v": r(d, d // g, k),
           "encoder_frontend.pos_encoder.conv.bias": r(d), "masker.temporal_mask_embed": r(d),
           "final_proj.weight": r(v, d), "final_proj.bias": r(v)}
    for n in range(2):
        pre = f"encoder.layers.{n}"
        for name in ("q_proj", "k_proj", "v_proj", "output_proj"):
            sd |= {f"{pre}.self_attn.{name}.weight": r(d, d), f"{pre}.self_attn.{name}.bias": r(d)}
        sd |= {f"{pre}.ffn.inner_proj.weight": r(f, d), f"{pre}.ffn.inner_proj.bias": r(f),
               f"{pre}.ffn.output_proj.weight": r(d, f), f"{pre}.ffn.output_proj.bias": r(d)}
        sd |= {f"{pre}.{ln}.{p}": r(d) for ln in ("self_attn_layer_norm", "ffn_layer_norm") for p in ("weight", "bias")}
    return sd


def _fairseq2_config(layer_norm: bool) -> dict[str, object]:
    return {"model_dim": 16, "feature_extractor_layer_descs": [[8, 10, 5], [8, 3, 2], [8, 2, 2]],
            "feature_extractor_bias": layer_norm, "feature_extractor_layer_norm_convs": layer_norm,
            "pos_conv_kernel_size": 4, "num_pos_conv_groups": 2, "num_encoder_layers": 2,
            "num_encoder_attn_heads": 2, "ffn_inner_dim": 24, "norm_order": "PRE" if layer_norm else "POST"}


def test_omnilingual_300m_config_is_the_xlsr_300m_shape() -> None:
    assert fs2.config_from_fairseq2(OMNI_300M) == xlsr_300m(dropout=0.0, attention_dropout=0.0)


@pytest.mark.parametrize("layer_norm", [False, True])
def test_fairseq2_state_dict_loads_and_round_trips(layer_norm: bool) -> None:
    cfg = fs2.config_from_fairseq2(_fairseq2_config(layer_norm))
    sd = _fairseq2_state(layer_norm)
    ssl_extra = {"quantizer.entries": torch.zeros(1, 4, 3), "final_target_proj.weight": torch.zeros(3, 3)}
    ours = fs2.state_from_fairseq2({"model": {**sd, **ssl_extra}}, cfg)
    model = CTCModel(CTCModelConfig(vocab_size=9, encoder=cfg, encoder_type="wav2vec2"))
    model.load_state_dict(ours)  # strict: every key present, every shape right
    wg, wv = sd["encoder_frontend.pos_encoder.conv.weight_g"], sd["encoder_frontend.pos_encoder.conv.weight_v"]
    folded = model.encoder.pos_conv.conv.weight.detach()
    assert torch.allclose(folded.norm(dim=(0, 1), keepdim=True), wg, atol=1e-5)
    assert torch.allclose(folded / folded.norm(dim=(0, 1), keepdim=True), wv / wv.norm(dim=(0, 1), keepdim=True))
    back = fs2.state_to_fairseq2(model.state_dict(), cfg)
    expected = {k: v for k, v in sd.items() if not re.search(r"weight_[gv]$", k)}
    assert back.keys() - {"encoder_frontend.pos_encoder.conv.weight"} == expected.keys()
    for k, v in expected.items():
        assert torch.equal(back[k], v), k
    with torch.no_grad():
        logp, _ = model.eval()(torch.randn(1, 3_000), torch.tensor([3_000]))
    assert torch.isfinite(logp).all()


def test_fairseq2_ssl_checkpoint_gives_the_encoder_and_unknown_keys_are_named() -> None:
    cfg = fs2.config_from_fairseq2(_fairseq2_config(True))
    sd = _fairseq2_state(True)
    sd["final_proj.weight"] = torch.zeros(5, 16)  # the SSL model's codebook projection, not a CTC head
    enc = fs2.encoder_state(fs2.state_from_fairseq2(sd, cfg, asr=False))
    CTCModel(CTCModelConfig(vocab_size=9, encoder=cfg, encoder_type="wav2vec2")).encoder.load_state_dict(enc)
    with pytest.raises(KeyError, match=r"encoder\.layers\.0\.self_attn\.rel_bias"):
        fs2.state_from_fairseq2({**sd, "encoder.layers.0.self_attn.rel_bias": torch.zeros(1)}, cfg)


def test_training_starts_from_a_pretrained_transformers_encoder(tmp_path: Path) -> None:
    from dataclasses import replace

    from speech.asr.interop.hf import load_hf_config
    from speech.asr.module import ASRModule

    d, ref, _ = _hf_dir(tmp_path, "layer")
    cfg = replace(load_hf_config(d), dropout=0.0)
    module = ASRModule(cfg, CharVocab(list("abc")), encoder_type="wav2vec2", init_encoder=str(d),
                       freeze_feature_extractor=True)
    w = ref.wav2vec2.encoder.layers[1].feed_forward.output_dense.weight
    assert torch.equal(module.net.encoder.layers[1].fc2.weight, w)
    assert not any(p.requires_grad for p in module.net.encoder.feature_extractor.parameters())
    assert module.net.encoder.proj.weight.requires_grad
    with pytest.raises(ValueError, match="num_layers"):
        ASRModule(replace(cfg, num_layers=3), CharVocab(list("abc")), encoder_type="wav2vec2", init_encoder=str(d))


def test_mms_adapters_and_another_sample_rate_export_and_import_back(tmp_path: Path) -> None:
    torch.manual_seed(2)
    vocab = CharVocab(list("abc"))
    enc = wav2vec2_tiny(num_layers=1, adapter_dim=8)
    model = CTCModel(CTCModelConfig(vocab_size=len(vocab), encoder=enc, encoder_type="wav2vec2", sample_rate=8_000))
    assert isinstance(model.encoder, Wav2Vec2Encoder)
    with torch.no_grad():  # adapters that change the output
        for layer in model.encoder.layers:
            assert isinstance(layer, TransformerLayer) and layer.adapter is not None
            layer.adapter.up.weight.normal_(0, 0.5)
    out = export_hf(model.eval(), vocab, tmp_path / "hf")
    assert json.loads((out / "config.json").read_text())["adapter_attn_dim"] == 8
    assert json.loads((out / "preprocessor_config.json").read_text())["sampling_rate"] == 8_000
    hf = Wav2Vec2ForCTC.from_pretrained(out).eval()
    assert hf.wav2vec2.encoder.layers[0].adapter_layer is not None
    w = _waves()[0]
    w8 = torchaudio_resample(w)
    fe = Wav2Vec2FeatureExtractor.from_pretrained(out)
    with torch.no_grad():  # the suite takes 16 kHz and resamples; transformers is handed the 8 kHz audio
        expected = hf(fe(w8, sampling_rate=8_000, return_tensors="pt").input_values).logits.log_softmax(-1)
        got, lens = model(torch.from_numpy(w)[None], torch.tensor([len(w)]))
        again, _ = load_hf(out)
        back, _ = again(torch.from_numpy(w)[None], torch.tensor([len(w)]))
    assert got.shape == expected.shape and int(lens[0]) == expected.shape[1]
    assert (got - expected).abs().max() < 1e-4
    assert isinstance(again.encoder, Wav2Vec2Encoder) and isinstance(again.cfg.encoder, Wav2Vec2Config)
    assert again.cfg.sample_rate == 8_000 and again.cfg.encoder.adapter_dim == 8
    torch.testing.assert_close(back, got)
    # Without its adapters the network gives other log-probs: the adapters take part.
    for layer in again.encoder.layers:
        assert isinstance(layer, TransformerLayer)
        layer.adapter = None
    with torch.no_grad():
        plain, _ = again(torch.from_numpy(w)[None], torch.tensor([len(w)]))
    assert (plain - got).abs().max() > 1e-2


def torchaudio_resample(w: np.ndarray) -> np.ndarray:
    """16 kHz to 8 kHz as the transformers ASR pipeline resamples."""
    import torchaudio.functional as AF

    return AF.resample(torch.from_numpy(w), 16_000, 8_000).numpy()
