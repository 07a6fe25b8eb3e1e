"""transformers wav2vec2 checkpoints (wav2vec2, XLS-R, MMS) to the suite's ``CTCModel`` and back.

Import: ``python -m speech.asr.interop.hf import=<hf dir> output=<suite dir> [target_lang=<mms vocab key>]``
Export: ``python -m speech.asr.interop.hf export=<suite dir> output=<hf dir>``

A directory that cannot be imported (weights that do not fit config.json, a tokenizer whose blank the head
cannot emit ...) raises ``ValueError`` with one line naming it and the mismatch; the command prints that line.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save
from torch import Tensor

from common.io import atomic_open
from speech.asr.config import CTCModelConfig
from speech.asr.interop.keys import KeyTable, rename
from speech.asr.interop.vocab import TokenVocab, read_json, vocab_from_hf
from speech.asr.model import CTCModel
from speech.audio import SAMPLE_RATE
from speech.encoders.wav2vec2 import Wav2Vec2Config, Wav2Vec2Encoder
from text.char_vocab import SPACE, CharVocab

log = logging.getLogger(__name__)

# transformers key (without the "wav2vec2." prefix) <-> suite key of the encoder.
ENCODER_KEYS: KeyTable = [
    ("feature_extractor.conv_layers.{n}.conv.", "feature_extractor.convs.{n}."),
    ("feature_extractor.conv_layers.{n}.layer_norm.", "feature_extractor.norms.{n}."),
    ("feature_projection.layer_norm.", "proj_norm."),
    ("feature_projection.projection.", "proj."),
    ("masked_spec_embed", "mask_emb"),
    ("encoder.pos_conv_embed.conv.bias", "pos_conv.conv.bias"),
    ("encoder.layer_norm.", "norm."),
    ("encoder.layers.{n}.attention.{p}_proj.", "layers.{n}.attn.{p}."),
    ("encoder.layers.{n}.attention.out_proj.", "layers.{n}.attn.out."),
    ("encoder.layers.{n}.layer_norm.", "layers.{n}.attn_norm."),
    ("encoder.layers.{n}.feed_forward.intermediate_dense.", "layers.{n}.fc1."),
    ("encoder.layers.{n}.feed_forward.output_dense.", "layers.{n}.fc2."),
    ("encoder.layers.{n}.final_layer_norm.", "layers.{n}.ffn_norm."),
    ("encoder.layers.{n}.adapter_layer.norm.", "layers.{n}.adapter.norm."),
    ("encoder.layers.{n}.adapter_layer.linear_1.", "layers.{n}.adapter.down."),
    ("encoder.layers.{n}.adapter_layer.linear_2.", "layers.{n}.adapter.up."),
]
# Parts of pre-training checkpoints that an encoder does not use.
_UNUSED = re.compile(r"^(quantizer\.|project_q\.|project_hid\.)")
_POS_G = ("encoder.pos_conv_embed.conv.parametrizations.weight.original0", "encoder.pos_conv_embed.conv.weight_g")
_POS_V = ("encoder.pos_conv_embed.conv.parametrizations.weight.original1", "encoder.pos_conv_embed.conv.weight_v")
_POS_W = "encoder.pos_conv_embed.conv.weight"


def fold_weight_norm(g: Tensor, v: Tensor) -> Tensor:
    """The effective weight of ``weight_norm(dim=2)``: g * v / ||v|| over every dim but the kernel's."""
    return v * (g / v.norm(dim=(0, 1), keepdim=True))


def config_from_hf(hf: dict[str, Any], do_normalize: bool = True) -> Wav2Vec2Config:
    """The suite's encoder config for a transformers ``Wav2Vec2Config`` dict."""
    if hf.get("model_type", "wav2vec2") != "wav2vec2":
        raise ValueError(f"model_type {hf.get('model_type')!r} is not wav2vec2")
    for key, ok in (("hidden_act", "gelu"), ("feat_extract_activation", "gelu"), ("add_adapter", False)):
        if hf.get(key, ok) != ok:
            raise ValueError(f"{key}={hf[key]!r} is not supported (only {ok!r})")
    stable = bool(hf.get("do_stable_layer_norm", False))  # transformers gives only pre-LN layers MMS adapters
    return Wav2Vec2Config(
        conv_dims=tuple(hf["conv_dim"]), conv_kernels=tuple(hf["conv_kernel"]), conv_strides=tuple(hf["conv_stride"]),
        conv_bias=bool(hf.get("conv_bias", False)), feature_norm=hf.get("feat_extract_norm", "group"),
        d_model=hf["hidden_size"], num_layers=hf["num_hidden_layers"], num_heads=hf["num_attention_heads"],
        ffn_dim=hf["intermediate_size"], pos_conv_kernel=hf["num_conv_pos_embeddings"],
        pos_conv_groups=hf["num_conv_pos_embedding_groups"], pre_norm=bool(hf.get("do_stable_layer_norm", False)),
        normalize_wave=do_normalize, dropout=hf.get("hidden_dropout", 0.1),
        attention_dropout=hf.get("attention_dropout", 0.1), layer_norm_eps=hf.get("layer_norm_eps", 1e-5),
        adapter_dim=hf.get("adapter_attn_dim") if stable else None,
    )


def config_to_hf(cfg: Wav2Vec2Config, vocab: TokenVocab | None = None) -> dict[str, Any]:
    """A transformers ``Wav2Vec2Config`` dict (``Wav2Vec2ForCTC`` when ``vocab`` is given)."""
    out: dict[str, Any] = {
        "model_type": "wav2vec2", "architectures": ["Wav2Vec2ForCTC" if vocab else "Wav2Vec2Model"],
        "conv_dim": list(cfg.conv_dims), "conv_kernel": list(cfg.conv_kernels), "conv_stride": list(cfg.conv_strides),
        "num_feat_extract_layers": len(cfg.conv_dims), "conv_bias": cfg.conv_bias,
        "feat_extract_norm": cfg.feature_norm,
        "feat_extract_activation": "gelu", "hidden_act": "gelu", "hidden_size": cfg.d_model,
        "num_hidden_layers": cfg.num_layers, "num_attention_heads": cfg.num_heads, "intermediate_size": cfg.ffn_dim,
        "num_conv_pos_embeddings": cfg.pos_conv_kernel, "num_conv_pos_embedding_groups": cfg.pos_conv_groups,
        "do_stable_layer_norm": cfg.pre_norm, "layer_norm_eps": cfg.layer_norm_eps, "hidden_dropout": cfg.dropout,
        "attention_dropout": cfg.attention_dropout, "ctc_loss_reduction": "mean", "ctc_zero_infinity": True,
        "adapter_attn_dim": cfg.adapter_dim,
    }
    if vocab is not None:
        out.update(vocab_size=len(vocab), pad_token_id=vocab.blank_id)
    return out


def encoder_state_from_hf(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Map a transformers state dict (``wav2vec2.`` prefix or none) to ``Wav2Vec2Encoder`` keys."""
    state = {k.removeprefix("wav2vec2."): v for k, v in state.items()
             if not k.startswith("lm_head.") and not _UNUSED.match(k.removeprefix("wav2vec2."))}
    g = next((state.pop(k) for k in _POS_G if k in state), None)
    v = next((state.pop(k) for k in _POS_V if k in state), None)
    if g is not None and v is not None:
        state[_POS_W] = fold_weight_norm(g, v)
    pos = state.pop(_POS_W, None)
    out = rename(state, ENCODER_KEYS, what="transformers key")
    if pos is not None:
        out["pos_conv.conv.weight"] = pos
    return out


def encoder_state_to_hf(state: dict[str, Tensor], prefix: str = "wav2vec2.") -> dict[str, Tensor]:
    """Map ``Wav2Vec2Encoder`` keys to transformers keys; the positional weight gets its weight norm back."""
    state = dict(state)
    pos = state.pop("pos_conv.conv.weight")
    out = {prefix + k: v for k, v in rename(state, ENCODER_KEYS, reverse=True, what="suite key").items()}
    out[prefix + _POS_G[0]] = pos.norm(dim=(0, 1), keepdim=True)  # [1, 1, K]
    out[prefix + _POS_V[0]] = pos
    return out


def read_state(model_dir: Path) -> dict[str, Tensor]:
    """The weights of a transformers directory: safetensors (single or sharded) or a weights-only .bin."""
    if (model_dir / "model.safetensors").is_file():
        return load_file(str(model_dir / "model.safetensors"))
    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        return {k: v for s in shards for k, v in load_file(str(model_dir / s)).items()}
    if (model_dir / "pytorch_model.bin").is_file():
        return torch.load(str(model_dir / "pytorch_model.bin"), map_location="cpu", weights_only=True)
    raise FileNotFoundError(f"{model_dir}: no model.safetensors, sharded safetensors or pytorch_model.bin")


def read_feature_extractor(model_dir: Path) -> dict[str, Any]:
    """The feature extractor's settings: preprocessor_config.json, or transformers 5's processor_config.json."""
    pre = read_json(model_dir / "preprocessor_config.json")
    return pre or dict(read_json(model_dir / "processor_config.json").get("feature_extractor") or {})


def load_hf_config(model_dir: Path) -> Wav2Vec2Config:
    """The suite's encoder config of a transformers wav2vec2 directory (with its input normalisation)."""
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir}: not a transformers model directory (config.json is missing)")
    hf = read_json(model_dir / "config.json")
    try:
        return config_from_hf(hf, bool(read_feature_extractor(model_dir).get("do_normalize", True)))
    except KeyError as e:
        raise ValueError(f"{model_dir}/config.json: no {e.args[0]!r} (not a wav2vec2 config)") from e
    except ValueError as e:
        raise ValueError(f"{model_dir}/config.json: {e}") from e


def load_hf_encoder(model_dir: str | os.PathLike[str]) -> Wav2Vec2Encoder:
    """The encoder of any transformers wav2vec2 directory (Wav2Vec2Model, ForPreTraining or ForCTC)."""
    d = Path(model_dir)
    cfg = load_hf_config(d)
    encoder = Wav2Vec2Encoder(cfg)
    encoder.load_state_dict(encoder_state_from_hf(read_state(d)))
    return encoder.eval()


def read_adapter(model_dir: Path, lang: str) -> dict[str, Tensor]:
    """One language's MMS weights, ``adapter.<lang>.safetensors`` (or ``.bin``): its adapters and its head."""
    if (model_dir / f"adapter.{lang}.safetensors").is_file():
        return load_file(str(model_dir / f"adapter.{lang}.safetensors"))
    if (model_dir / f"adapter.{lang}.bin").is_file():
        return torch.load(str(model_dir / f"adapter.{lang}.bin"), map_location="cpu", weights_only=True)
    langs = sorted({f.name.split(".")[1] for f in model_dir.glob("adapter.*.*")})
    raise ValueError(f"{model_dir}: no adapter.{lang}.safetensors for target_lang={lang} "
                     f"(adapters: {', '.join(langs[:10]) or 'none'})")


def _few(keys: Any) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "") if keys else "none"


def with_adapter(model_dir: Path, state: dict[str, Tensor], lang: str) -> dict[str, Tensor]:
    """``state`` with ``lang``'s adapters and head in place of the default ones, as ``load_adapter`` does."""
    adapter = read_adapter(model_dir, lang)
    expected = {k for k in state if ".adapter_layer." in k} | {"lm_head.weight", "lm_head.bias"}
    if adapter.keys() != expected:
        missing, unexpected = _few(expected - adapter.keys()), _few(adapter.keys() - expected)
        raise ValueError(f"{model_dir}: adapter.{lang} does not fit the model (missing {missing}; "
                         f"unexpected {unexpected})")
    return {**state, **adapter}


def load_hf(model_dir: str | os.PathLike[str], target_lang: str | None = None) -> tuple[CTCModel, TokenVocab]:
    """A transformers ``Wav2Vec2ForCTC`` directory as the suite's ``CTCModel`` and its token table.

    ``target_lang`` (MMS): the language whose adapter and head (``adapter.<lang>.safetensors``) and whose table of
    a nested vocab.json to use, as ``from_pretrained(dir, target_lang=...)`` and the tokenizer's ``target_lang`` do;
    without it, the weights of model.safetensors and the tokenizer's own ``target_lang``. The feature extractor's
    ``sampling_rate`` becomes the model's: the suite's 16 kHz audio is resampled to it, as the pipeline does.
    """
    d = Path(model_dir)
    cfg = load_hf_config(d)
    hf = read_json(d / "config.json")
    state = read_state(d)
    if "lm_head.weight" not in state:
        raise ValueError(f"{d}: no lm_head (not a Wav2Vec2ForCTC); use load_hf_encoder for the encoder alone")
    rows = int(state["lm_head.weight"].shape[0])
    if int(hf.get("vocab_size", rows)) != rows:  # transformers refuses this directory too
        raise ValueError(f"{d}: config.json has vocab_size={hf['vocab_size']} but lm_head.weight has {rows} rows")
    if target_lang and cfg.adapter_dim:
        state = with_adapter(d, state, target_lang)
        rows = int(state["lm_head.weight"].shape[0])
    vocab = vocab_from_hf(d, rows, target_lang)
    rate = int(read_feature_extractor(d).get("sampling_rate", SAMPLE_RATE))
    model = CTCModel(CTCModelConfig(vocab_size=rows, encoder=cfg, sample_rate=rate, encoder_type="wav2vec2"))
    try:
        missing, unexpected = model.encoder.load_state_dict(encoder_state_from_hf(state), strict=False)
        model.head.load_state_dict({"weight": state["lm_head.weight"], "bias": state["lm_head.bias"]})
    except (KeyError, RuntimeError) as e:
        raise ValueError(f"{d}: the weights do not fit config.json: {' '.join(str(e).split())[:300]}") from e
    if missing or unexpected:
        hint = " (config.json sets adapter_attn_dim, the weights have no adapters)" if cfg.adapter_dim and any(
            ".adapter." in k for k in missing) else ""
        raise ValueError(f"{d}: the weights do not fit config.json{hint}: missing {_few(missing)}; "
                         f"unexpected {_few(unexpected)}")
    if rate != SAMPLE_RATE:
        log.info("%s: the feature extractor runs at %d Hz; 16 kHz input is resampled to it", d, rate)
    return model.eval(), vocab


def _json(path: Path, data: dict[str, Any]) -> None:
    with atomic_open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, ensure_ascii=False)


def export_hf(model: CTCModel, vocab: CharVocab, out_dir: str | os.PathLike[str]) -> Path:
    """Write a directory that ``Wav2Vec2ForCTC.from_pretrained`` and the ASR pipeline load (atomically per file)."""
    if not isinstance(model.cfg.encoder, Wav2Vec2Config):
        raise ValueError(f"only wav2vec2 models export to transformers, not {model.cfg.encoder_type!r}")
    out = Path(out_dir)
    if not isinstance(vocab, TokenVocab):  # the suite's own table: blank 0, UNK 1, space 2
        vocab = TokenVocab(vocab.tokens, vocab.blank_id, vocab.unk_id, lang_chars=vocab.lang_chars)
    delim = vocab.word_delimiter
    names = [delim if t == SPACE else "<pad>" if i == vocab.blank_id else "<unk>" if i == vocab.unk_id else t
             for i, t in enumerate(vocab.tokens)]
    state = encoder_state_to_hf({k: v.detach().cpu() for k, v in model.encoder.state_dict().items()})
    state["lm_head.weight"], state["lm_head.bias"] = model.head.weight.detach().cpu(), model.head.bias.detach().cpu()
    out.mkdir(parents=True, exist_ok=True)
    with atomic_open(out / "model.safetensors", "wb") as f:
        f.write(save({k: v.contiguous() for k, v in state.items()}, metadata={"format": "pt"}))
    cfg = config_to_hf(model.cfg.encoder, vocab)
    specials = {"pad_token": "<pad>", "unk_token": "<unk>"}
    bos_eos = {"bos_token": "<s>", "eos_token": "</s>"} if {"<s>", "</s>"} <= set(names) else {}
    cfg.update(bos_token_id=names.index("<s>") if bos_eos else None,
               eos_token_id=names.index("</s>") if bos_eos else None)
    _json(out / "config.json", cfg)
    _json(out / "vocab.json", {t: i for i, t in enumerate(names)})
    _json(out / "tokenizer_config.json", {
        "tokenizer_class": "Wav2Vec2CTCTokenizer", "word_delimiter_token": delim, "do_lower_case": False,
        "replace_word_delimiter_char": " ", **specials, **bos_eos,
    })
    _json(out / "preprocessor_config.json", {
        "feature_extractor_type": "Wav2Vec2FeatureExtractor", "processor_class": "Wav2Vec2Processor",
        "feature_size": 1, "sampling_rate": model.cfg.sample_rate, "padding_value": 0.0,
        "do_normalize": model.cfg.encoder.normalize_wave,
        "return_attention_mask": model.cfg.encoder.feature_norm == "layer",
    })
    return out


def main(argv: list[str] | None = None) -> None:
    """``import=<hf dir> output=<suite dir> [target_lang=...]`` or ``export=<suite dir> output=<hf dir>``."""
    from speech.asr.hub import load_model, save_pretrained

    args = dict(a.split("=", 1) for a in (sys.argv[1:] if argv is None else argv))
    if "output" not in args or ("import" in args) == ("export" in args):
        raise SystemExit("usage: python -m speech.asr.interop.hf (import=<hf dir> | export=<suite dir>) output=<dir>")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if "import" in args:
            model, tokens = load_hf(args["import"], args.get("target_lang"))
            out = save_pretrained(model, tokens, args["output"], source=str(args["import"]))
        else:
            suite_model, vocab = load_model(args["export"])
            out = export_hf(suite_model, vocab, args["output"])
    except (ValueError, FileNotFoundError) as e:  # bad input: its one-line reason, not a traceback
        raise SystemExit(f"error: {e}") from None
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
