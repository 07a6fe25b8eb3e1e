"""transformers' wav2vec2 layout (wav2vec2, XLS-R, MMS) for the suite's ``Wav2Vec2Encoder``: config and weights.

Shared by everything that reads or writes such directories: CTC import/export (``speech.asr.interop.hf``), SSL
exports (``speech.ssl.hub``) and encoder initialisation.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import Tensor

from common.io import read_json_object
from speech.encoders.keys import KeyTable, rename
from speech.encoders.wav2vec2 import Wav2Vec2Config, Wav2Vec2Encoder


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object file, or {} when the file is absent; bad JSON names the file."""
    return read_json_object(path) if path.is_file() else {}


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


def config_to_hf(cfg: Wav2Vec2Config, ctc: tuple[int, int] | None = None) -> dict[str, Any]:
    """A transformers ``Wav2Vec2Config`` dict; ``Wav2Vec2ForCTC`` when ``ctc`` gives (vocab_size, pad_token_id)."""
    out: dict[str, Any] = {
        "model_type": "wav2vec2", "architectures": ["Wav2Vec2ForCTC" if ctc else "Wav2Vec2Model"],
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
    if ctc is not None:
        out.update(vocab_size=ctc[0], pad_token_id=ctc[1])
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
