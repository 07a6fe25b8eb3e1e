"""fairseq2 / Omnilingual ASR wav2vec2 checkpoints to the suite's keys and back, without fairseq2 installed.

Key names follow fairseq2's ``Wav2Vec2Model`` / ``Wav2Vec2AsrModel`` (src/fairseq2/models/wav2vec2/
{frontend,feature_extractor,position_encoder,masker}.py, asr/model.py and the transformer encoder):

=========================================================================  ===============================
fairseq2 key                                                               suite ``CTCModel`` key
=========================================================================  ===============================
encoder_frontend.feature_extractor.layers.{n}.conv.*                       encoder.feature_extractor.convs.{n}.*
encoder_frontend.feature_extractor.layers.{n}.layer_norm.*  (layer norm)   encoder.feature_extractor.norms.{n}.*
encoder_frontend.feature_extractor.layers.0.group_norm.*    (group norm)   encoder.feature_extractor.norms.0.*
encoder_frontend.post_extract_layer_norm.*                                 encoder.proj_norm.*
encoder_frontend.model_dim_proj.*                                          encoder.proj.*
encoder_frontend.pos_encoder.conv.{bias, weight | weight_g + weight_v}     encoder.pos_conv.conv.{bias, weight}
encoder_frontend.layer_norm.*                               (post-LN)      encoder.norm.*
encoder.layer_norm.*                                        (pre-LN)       encoder.norm.*
encoder.layers.{n}.self_attn.{q,k,v}_proj.*                                encoder.layers.{n}.attn.{q,k,v}.*
encoder.layers.{n}.self_attn.output_proj.*                                 encoder.layers.{n}.attn.out.*
encoder.layers.{n}.self_attn_layer_norm.*                                  encoder.layers.{n}.attn_norm.*
encoder.layers.{n}.ffn.inner_proj.* / ffn.output_proj.*                    encoder.layers.{n}.fc1.* / fc2.*
encoder.layers.{n}.ffn_layer_norm.*                                        encoder.layers.{n}.ffn_norm.*
masker.temporal_mask_embed                                                 encoder.mask_emb
final_proj.*                                                (ASR only)     head.*
=========================================================================  ===============================

Pre-training parts (``quantizer.*``, ``final_target_proj.*`` and the SSL model's ``final_proj``, which
projects to the codebook space) are dropped. The positional conv's weight norm is folded on import.
The CTC blank of fairseq2's wav2vec2 ASR models is id 0.
"""

from __future__ import annotations

import re
from typing import Any

from torch import Tensor

from speech.encoders.keys import KeyTable, rename
from speech.encoders.wav2vec2 import Wav2Vec2Config
from speech.encoders.wav2vec2_hf import fold_weight_norm

_COMMON: KeyTable = [
    ("encoder_frontend.feature_extractor.layers.{n}.conv.", "encoder.feature_extractor.convs.{n}."),
    ("encoder_frontend.post_extract_layer_norm.", "encoder.proj_norm."),
    ("encoder_frontend.model_dim_proj.", "encoder.proj."),
    ("encoder_frontend.pos_encoder.conv.", "encoder.pos_conv.conv."),
    ("encoder.layers.{n}.self_attn.{p}_proj.", "encoder.layers.{n}.attn.{p}."),
    ("encoder.layers.{n}.self_attn.output_proj.", "encoder.layers.{n}.attn.out."),
    ("encoder.layers.{n}.self_attn_layer_norm.", "encoder.layers.{n}.attn_norm."),
    ("encoder.layers.{n}.ffn.inner_proj.", "encoder.layers.{n}.fc1."),
    ("encoder.layers.{n}.ffn.output_proj.", "encoder.layers.{n}.fc2."),
    ("encoder.layers.{n}.ffn_layer_norm.", "encoder.layers.{n}.ffn_norm."),
    ("masker.temporal_mask_embed", "encoder.mask_emb"),
]
_SSL_ONLY = re.compile(r"^(quantizer\.|final_target_proj\.)")


def key_table(cfg: Wav2Vec2Config, asr: bool = True) -> KeyTable:
    """fairseq2 <-> suite keys for one architecture (which norms exist depends on it)."""
    table = list(_COMMON)
    fe = "encoder_frontend.feature_extractor.layers."
    if cfg.feature_norm == "layer":
        table.append((fe + "{n}.layer_norm.", "encoder.feature_extractor.norms.{n}."))
    else:
        table.append((fe + "0.group_norm.", "encoder.feature_extractor.norms.0."))
    table.append(("encoder.layer_norm." if cfg.pre_norm else "encoder_frontend.layer_norm.", "encoder.norm."))
    if asr:
        table.append(("final_proj.", "head."))
    return table


def config_from_fairseq2(enc: dict[str, Any], normalize_wave: bool | None = None) -> Wav2Vec2Config:
    """The suite's encoder config from fairseq2's ``Wav2Vec2EncoderConfig`` fields (as a dict)."""
    if enc.get("use_fbank") or enc.get("use_conformer") or enc.get("pos_encoder_type", "conv") != "conv":
        raise ValueError("only waveform, conv-position, transformer wav2vec2 encoders convert "
                         "(use_fbank, use_conformer and relative positions are not supported)")
    if enc.get("pos_encoder_depth", 1) != 1 or enc.get("layer_norm_features", False):
        raise ValueError("pos_encoder_depth != 1 and layer_norm_features are not supported")
    descs = [tuple(d) for d in enc["feature_extractor_layer_descs"]]
    layer_norm = bool(enc.get("feature_extractor_layer_norm_convs", False))
    norm_order = str(enc.get("norm_order", "POST")).upper()
    return Wav2Vec2Config(
        conv_dims=tuple(d[0] for d in descs), conv_kernels=tuple(d[1] for d in descs),
        conv_strides=tuple(d[2] for d in descs), conv_bias=bool(enc.get("feature_extractor_bias", False)),
        feature_norm="layer" if layer_norm else "group", d_model=int(enc["model_dim"]),
        num_layers=int(enc["num_encoder_layers"]), num_heads=int(enc["num_encoder_attn_heads"]),
        ffn_dim=int(enc["ffn_inner_dim"]), pos_conv_kernel=int(enc.get("pos_conv_kernel_size", 128)),
        pos_conv_groups=int(enc.get("num_pos_conv_groups", 16)), pre_norm="PRE" in norm_order,
        normalize_wave=layer_norm if normalize_wave is None else normalize_wave,
        dropout=float(enc.get("dropout_p", 0.1)), attention_dropout=float(enc.get("attn_dropout_p", 0.1)),
    )


def state_from_fairseq2(state: dict[str, Any], cfg: Wav2Vec2Config, asr: bool = True) -> dict[str, Tensor]:
    """A fairseq2 checkpoint (``{"model": ...}`` or the bare dict) to ``CTCModel`` keys.

    ``asr=False`` (an SSL checkpoint): only the encoder is returned; load it into ``CTCModel.encoder``
    after stripping the "encoder." prefix, or use ``encoder_state``.
    """
    state = dict(state.get("model", state))
    state = {k.removeprefix("module."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not _SSL_ONLY.match(k) and (asr or not k.startswith("final_proj."))}
    g = state.pop("encoder_frontend.pos_encoder.conv.weight_g", None)
    v = state.pop("encoder_frontend.pos_encoder.conv.weight_v", None)
    if g is not None and v is not None:
        state["encoder_frontend.pos_encoder.conv.weight"] = fold_weight_norm(g, v)
    return rename(state, key_table(cfg, asr), what="fairseq2 key")


def state_to_fairseq2(state: dict[str, Tensor], cfg: Wav2Vec2Config) -> dict[str, Tensor]:
    """``CTCModel`` keys to a fairseq2 ``Wav2Vec2AsrModel`` state dict (positional weight kept folded)."""
    return rename(dict(state), key_table(cfg, asr=True), reverse=True, what="suite key")


def encoder_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The ``Wav2Vec2Encoder`` part of a converted state dict."""
    return {k.removeprefix("encoder."): v for k, v in state.items() if k.startswith("encoder.")}
