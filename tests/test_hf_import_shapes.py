"""transformers CTC checkpoints as found in the wild import and transcribe as the transformers pipeline does.

Each shape is a tiny random ``Wav2Vec2ForCTC`` saved with its tokenizer and feature extractor the way that
recipe saves them; its head is rescaled so that transcripts vary from frame to frame (letters, word delimiters
and blanks; never the special tokens, which the pipeline would print literally and the suite keeps silent).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from transformers import Wav2Vec2Config as HFConfig
from transformers import (
    Wav2Vec2CTCTokenizer,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2ForCTC,
    Wav2Vec2Processor,
    pipeline,
)

from speech.asr.infer import Transcriber
from speech.asr.interop.hf import load_hf, main

UPPER = list("ETAOINSHRDLU'")
LOWER = list("abcdefghijklmnoprstuvyzäö")


@dataclass
class Shape:
    """One checkpoint layout: its vocab.json, tokenizer, head size, encoder and feature extractor."""

    vocab: dict[str, Any]
    """vocab.json as written: token -> id, or language -> (token -> id) for MMS."""
    tokenizer: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of ``Wav2Vec2CTCTokenizer``."""
    head: str = "vocab"
    """"vocab": ``vocab_size`` = the entries of vocab.json; "tokenizer": ``len(tokenizer)`` (added tokens too)."""
    norm: str = "layer"
    """feat_extract_norm; "layer" also means pre-LN and conv biases (XLS-R), "group" post-LN (base)."""
    extractor: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of ``Wav2Vec2FeatureExtractor``."""
    processor: bool = True
    """Saved as a ``Wav2Vec2Processor`` (processor_config.json) or piece by piece (preprocessor_config.json)."""
    adapters: list[str] = field(default_factory=list)
    """MMS: languages that get an ``adapter.<lang>.safetensors`` of their own."""
    target_lang: str | None = None
    """The language asked for at load time (MMS)."""
    added: list[str] = field(default_factory=list)
    """Tokens added to the tokenizer after it was built (beyond the head unless ``head`` is "tokenizer")."""


def _table(tokens: list[str]) -> dict[str, int]:
    return {t: i for i, t in enumerate(tokens)}


def base_960h() -> Shape:
    """facebook/wav2vec2-base-960h: <s> and </s> in vocab.json, upper-case letters, group norm, post-LN."""
    return Shape(_table(["<pad>", "<s>", "</s>", "<unk>", "|", *UPPER]), norm="group",
                 extractor={"return_attention_mask": False}, processor=False)


def xlsr_recipe() -> Shape:
    """The XLS-R fine-tuning blog: [UNK] and [PAD] appended, ``vocab_size=len(processor.tokenizer)``."""
    letters = _table(sorted([*LOWER, " "]))
    letters["|"] = letters.pop(" ")
    letters |= {"[UNK]": len(letters), "[PAD]": len(letters) + 1}
    return Shape(letters, {"unk_token": "[UNK]", "pad_token": "[PAD]"}, head="tokenizer",
                 extractor={"return_attention_mask": True})


def added_beyond_head() -> Shape:
    """The issue's case: vocab.json without <s>/</s> (the tokenizer adds them), ``vocab_size=len(vocab.json)``."""
    return Shape(_table(["<pad>", "<unk>", "|", *LOWER[:12]]), added=["ch", "sch"])


def added_inside_head() -> Shape:
    """Tokens added after vocab.json that the head was resized for: they are emitted as text."""
    return Shape(_table(["<pad>", "<unk>", "|", *LOWER[:8]]), head="tokenizer", added=["ch", "sch"])


def mms(target_lang: str | None) -> Shape:
    """MMS: nested vocab.json and a bottleneck adapter per language, with its own head size."""
    eng = _table(["<s>", "<pad>", "</s>", "<unk>", "|", *LOWER[:10]])
    fra = _table(["<s>", "<pad>", "</s>", "<unk>", "|", *LOWER[5:20]])
    return Shape({"eng": eng, "fra": fra}, {"target_lang": "eng"}, adapters=["eng", "fra"], target_lang=target_lang)


def no_normalize() -> Shape:
    """``do_normalize=False`` on a layer-norm model (group norm after the first conv undoes any input scaling)."""
    return Shape(_table(["<pad>", "<s>", "</s>", "<unk>", "|", *UPPER]), extractor={"do_normalize": False})


def lower_case() -> Shape:
    """``do_lower_case``: an upper-case vocabulary whose decoded text comes out lower-cased."""
    return Shape(_table(["<pad>", "<s>", "</s>", "<unk>", "|", *UPPER]), {"do_lower_case": True})


def rate_8k() -> Shape:
    """A feature extractor at 8 kHz: the pipeline resamples the 16 kHz input first."""
    return Shape(_table(["<pad>", "<s>", "</s>", "<unk>", "|", *LOWER[:12]]), extractor={"sampling_rate": 8_000})


SHAPES = {
    "base_960h": base_960h, "xlsr_recipe": xlsr_recipe, "added_beyond_head": added_beyond_head,
    "added_inside_head": added_inside_head, "mms_default": lambda: mms(None), "mms_fra": lambda: mms("fra"),
    "no_normalize": no_normalize,
    "lower_case": lower_case, "rate_8k": rate_8k,
}


def _hf_config(shape: Shape, vocab_size: int, pad_id: int) -> HFConfig:
    layer = shape.norm == "layer"
    return HFConfig(vocab_size=vocab_size, pad_token_id=pad_id, hidden_size=16, num_hidden_layers=2,
                    num_attention_heads=2, intermediate_size=32, conv_dim=(16,) * 4, conv_kernel=(10, 4, 4, 4),
                    conv_stride=(5, 4, 4, 4), num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2,
                    feat_extract_norm=shape.norm, do_stable_layer_norm=layer, conv_bias=layer,
                    adapter_attn_dim=4 if shape.adapters else None)


def _hidden(model: Wav2Vec2ForCTC) -> torch.Tensor:
    """The head's inputs [N, D] over ``waves()`` (normalised), to aim a random head at what varies."""
    with torch.no_grad():
        xs = [torch.from_numpy((w - w.mean()) / np.sqrt(w.var() + 1e-7))[None] for w in waves()]
        return torch.cat([model.wav2vec2(x).last_hidden_state[0] for x in xs])


def _vary_head(head: torch.nn.Linear, tok: Wav2Vec2CTCTokenizer, table: dict[str, int], hidden: torch.Tensor) -> None:
    """Letters, delimiters and blanks win frame by frame; special tokens never do.

    A random head over a tiny random encoder picks the same few tokens everywhere: its rows are aimed at the
    hidden states' deviation from their mean instead, scaled to unit spread.
    """
    gen = torch.Generator().manual_seed(head.out_features)
    with torch.no_grad():
        w = torch.randn(head.weight.shape, generator=gen)
        mean = hidden.mean(0)
        w /= ((hidden - mean) @ w.T).std()
        head.weight.copy_(w)
        head.bias.copy_(-w @ mean)
        for t in tok.all_special_tokens:
            i = cast(int, tok.convert_tokens_to_ids(t))
            if i < head.out_features and t not in (tok.pad_token, tok.word_delimiter_token):
                head.bias[i] = -1e4
        head.bias[table[tok.pad_token]] += 1.0
        head.bias[table["|"]] += 1.0


def build(shape: Shape, d: Path) -> None:
    """Save ``shape`` to ``d`` as transformers would (model, tokenizer, feature extractor, adapters)."""
    torch.manual_seed(0)
    d.mkdir()
    (d / "vocab.json").write_text(json.dumps(shape.vocab, ensure_ascii=False), encoding="utf-8")
    tok = Wav2Vec2CTCTokenizer(str(d / "vocab.json"), **shape.tokenizer)
    if shape.added:
        tok.add_tokens(shape.added)
    table = tok.get_vocab()
    size = len(tok) if shape.head == "tokenizer" else len(tok.encoder)
    model = Wav2Vec2ForCTC(_hf_config(shape, size, tok.pad_token_id)).eval()
    with torch.no_grad():  # off their init values, so a mis-mapped weight shows
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    hidden = _hidden(model)
    _vary_head(model.lm_head, tok, table, hidden)
    model.save_pretrained(d)
    fe = Wav2Vec2FeatureExtractor(**shape.extractor)
    if shape.processor:
        Wav2Vec2Processor(feature_extractor=fe, tokenizer=tok).save_pretrained(d)
    else:
        tok.save_pretrained(d)
        fe.save_pretrained(d)
    for i, lang in enumerate(shape.adapters):  # MMS: each language's adapters and head, beside the base weights
        tok.set_target_lang(lang)
        weights = model._get_adapters()
        gen = torch.Generator().manual_seed(10 + i)
        state = {k: v.detach() + 0.3 * torch.randn(v.shape, generator=gen) for k, v in weights.items()
                 if not k.startswith("lm_head.")}
        model.load_state_dict(state, strict=False)
        head = torch.nn.Linear(16, len(tok.encoder))
        _vary_head(head, tok, tok.encoder, _hidden(model))
        state |= {"lm_head.weight": head.weight.detach(), "lm_head.bias": head.bias.detach()}
        save_file({k: v.contiguous() for k, v in state.items()}, str(d / f"adapter.{lang}.safetensors"))


def waves() -> list[np.ndarray]:
    """Noise bursts and tones of different lengths (16 kHz)."""
    rng = np.random.default_rng(0)
    out = []
    for n, f in ((9_000, 150.0), (14_000, 320.0), (21_000, 90.0)):
        t = np.arange(n) / 16_000
        env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t + n)
        out.append((0.3 * np.sin(2 * np.pi * f * t) * env + 0.2 * rng.standard_normal(n) * env).astype(np.float32))
    return out


def reference(d: Path, shape: Shape) -> list[str]:
    """The transformers ASR pipeline's transcripts of ``waves()`` given at 16 kHz (whitespace runs collapsed)."""
    lang = shape.target_lang
    model = Wav2Vec2ForCTC.from_pretrained(d, target_lang=lang, ignore_mismatched_sizes=lang is not None).eval()
    tok = Wav2Vec2CTCTokenizer.from_pretrained(d, target_lang=lang) if lang else Wav2Vec2CTCTokenizer.from_pretrained(d)
    fe = Wav2Vec2FeatureExtractor.from_pretrained(d)
    asr = pipeline("automatic-speech-recognition", model=model, tokenizer=tok, feature_extractor=fe, device="cpu")
    # The suite writes one space between words: the pipeline keeps "a  b" where a blank splits two delimiters.
    outputs: list[Any] = [asr({"raw": w, "sampling_rate": 16_000}) for w in waves()]
    return [" ".join(out["text"].split()) for out in outputs]


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_imported_shape_transcribes_as_the_transformers_pipeline(name: str, tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    shape = SHAPES[name]()
    d = tmp_path / "hf"
    build(shape, d)
    expected = reference(d, shape)
    # Meaningful only if the transcripts are varied: words, several letters, not all alike.
    assert all(expected) and any(" " in t for t in expected) and len(set(expected)) == len(expected)
    assert len(set("".join(expected)) - {" "}) >= 4
    with caplog.at_level(logging.INFO, logger="speech.asr.interop"):
        main([f"import={d}", f"output={tmp_path / 'suite'}",
              *([f"target_lang={shape.target_lang}"] if shape.target_lang else [])])
    assert Transcriber.from_pretrained(tmp_path / "suite").transcribe(waves()) == expected
    beyond = "never emitted" in caplog.text
    assert beyond == (name == "added_beyond_head"), caplog.text


def test_tokens_beyond_the_head_are_named_in_the_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    build(added_beyond_head(), tmp_path / "hf")
    with caplog.at_level(logging.INFO, logger="speech.asr.interop"):
        _, vocab = load_hf(tmp_path / "hf")
    assert len(vocab) == 15 and "<s>" not in vocab.tokens and vocab.decode([3, 2, 4, 1, 0]) == "a b"
    assert "<s> (15), </s> (16), ch (17), sch (18)" in caplog.text


def _error_line(d: Path, tmp_path: Path, *extra: str) -> str:
    """The CLI's message for a directory it refuses: one line naming the directory."""
    with pytest.raises(SystemExit) as e:
        main([f"import={d}", f"output={tmp_path / 'suite'}", *extra])
    line = str(e.value.code)
    assert line.startswith("error: ") and str(d) in line and "\n" not in line
    assert not (tmp_path / "suite").exists()
    return line


def test_head_narrower_than_config_vocab_size_is_refused_as_transformers_refuses(tmp_path: Path) -> None:
    d = tmp_path / "hf"
    build(added_beyond_head(), d)
    cfg = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**cfg, "vocab_size": 17}))  # len(tokenizer), the head still 15
    with pytest.raises(RuntimeError, match="mismatched"):
        Wav2Vec2ForCTC.from_pretrained(d)
    with pytest.raises(ValueError, match=r"vocab_size=17 but lm_head\.weight has 15 rows"):
        load_hf(d)
    assert "vocab_size=17" in _error_line(d, tmp_path)


def test_blank_beyond_the_head_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "hf"
    build(xlsr_recipe(), d)  # [PAD] is the last entry of vocab.json
    state_file = d / "model.safetensors"
    from safetensors.torch import load_file

    state = load_file(str(state_file))
    n = int(state["lm_head.weight"].shape[0]) - 3  # a head cut short of [PAD], <s> and </s>
    state["lm_head.weight"], state["lm_head.bias"] = state["lm_head.weight"][:n], state["lm_head.bias"][:n]
    save_file(state, str(state_file))
    cfg = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**cfg, "vocab_size": n}))
    line = _error_line(d, tmp_path)
    assert f"pad token '[PAD]' (the CTC blank) has id {n}, beyond the {n} outputs" in line


def test_mms_language_without_an_adapter_is_named(tmp_path: Path) -> None:
    d = tmp_path / "hf"
    build(mms(None), d)
    line = _error_line(d, tmp_path, "target_lang=deu")
    assert "no adapter.deu.safetensors" in line and "eng, fra" in line
    (d / "adapter.eng.safetensors").unlink()
    save_file({"lm_head.weight": torch.zeros(3, 16), "lm_head.bias": torch.zeros(3)},
              str(d / "adapter.eng.safetensors"))
    assert "adapter.eng does not fit the model (missing wav2vec2.encoder" in _error_line(d, tmp_path,
                                                                                        "target_lang=eng")
