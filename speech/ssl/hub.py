"""Pretrained-encoder directories in the transformers ``Wav2Vec2ForPreTraining`` layout.

``config.json`` (model_type "wav2vec2") + ``preprocessor_config.json`` + ``model.safetensors``: the encoder
under ``wav2vec2.*`` plus the quantizer and projections. ASR fine-tuning reads it with
``model.init_encoder=<dir>`` (speech.asr.hub.load_encoder_weights), transformers with
``Wav2Vec2ForPreTraining.from_pretrained`` / ``Wav2Vec2Model.from_pretrained``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

from torch import Tensor

from common import hub
from speech.encoders.wav2vec2 import Wav2Vec2Config
from speech.encoders.wav2vec2_hf import (
    config_from_hf,
    config_to_hf,
    encoder_state_from_hf,
    encoder_state_to_hf,
    load_hf_config,
    read_state,
)
from speech.ssl.config import SSLObjectiveConfig
from speech.ssl.model import Wav2Vec2SSL

_HEADS = ("quantizer.", "project_q.", "project_hid.")
"""Keys of the pretraining parts outside the encoder."""
MODEL_TYPE = "wav2vec2"
"""transformers' name for the layout, so that ``Wav2Vec2ForPreTraining.from_pretrained`` reads the directory."""


def state_to_hf(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Encoder keys to transformers' (``wav2vec2.*``); the pretraining heads keep their names."""
    enc = {k.removeprefix("encoder."): v for k, v in state.items() if k.startswith("encoder.")}
    return {**encoder_state_to_hf(enc), **{k: v for k, v in state.items() if k.startswith(_HEADS)}}


def state_from_hf(state: dict[str, Tensor], model_dir: Path) -> dict[str, Tensor]:
    enc = {f"encoder.{k}": v for k, v in encoder_state_from_hf(state).items()}
    return {**enc, **{k: v for k, v in state.items() if k.startswith(_HEADS)}}


def with_preprocessor(config: dict[str, Any], model_dir: Path) -> dict[str, Any]:
    """The input normalisation lives in ``preprocessor_config.json`` in this layout."""
    path = model_dir / "preprocessor_config.json"
    pre = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return {**config, "do_normalize": bool(pre.get("do_normalize", True))}


@hub.register_model_type(MODEL_TYPE, state_to_file=state_to_hf, state_from_file=state_from_hf,
                         complete_config=with_preprocessor)
def build_ssl(config: dict[str, Any]) -> Wav2Vec2SSL:
    """The pretraining network of a suite SSL export (a plain transformers wav2vec2 directory has no objective)."""
    if "ssl_objective" not in config:
        raise ValueError("no ssl_objective: a transformers wav2vec2 directory, not one written by "
                         "speech.ssl.hub.save_pretrained")
    enc = config_from_hf(config, bool(config.get("do_normalize", True)))
    return Wav2Vec2SSL(enc, SSLObjectiveConfig(**config["ssl_objective"]))


def save_pretrained(net: Wav2Vec2SSL, out_dir: str | os.PathLike[str]) -> Path:
    """Write the encoder and the pretraining heads as a transformers wav2vec2 directory (each file atomically)."""
    enc, o = net.cfg, net.objective
    cfg = config_to_hf(enc)
    cfg.update(
        architectures=["Wav2Vec2ForPreTraining"], num_codevector_groups=o.num_groups,
        num_codevectors_per_group=o.num_vars, codevector_dim=o.codevector_dim, proj_codevector_dim=o.proj_dim,
        num_negatives=o.num_negatives, contrastive_logits_temperature=o.logit_temp,
        diversity_loss_weight=o.diversity_weight, mask_time_prob=o.mask.prob, mask_time_length=o.mask.length,
        mask_time_min_masks=o.mask.min_spans, ssl_objective=asdict(o),
    )
    del cfg["model_type"]
    out = hub.save_pretrained(net, out_dir, model_type=MODEL_TYPE, config=cfg)
    hub.write_json(out / "preprocessor_config.json", {
        "feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1, "sampling_rate": 16_000,
        "padding_value": 0.0, "do_normalize": enc.normalize_wave, "return_attention_mask": enc.feature_norm == "layer",
    })
    return out


def read_pretrained(model_dir: str | os.PathLike[str]) -> tuple[Wav2Vec2Config, dict[str, Tensor], dict[str, Any]]:
    """Encoder config, encoder state (suite keys) and the rest of a transformers wav2vec2 directory's weights."""
    d = Path(model_dir)
    cfg = load_hf_config(d)
    state = read_state(d)
    heads = {k: v for k, v in state.items() if k.startswith(_HEADS)}
    return cfg, encoder_state_from_hf(state), heads


def load_pretrained(model_dir: str | os.PathLike[str]) -> Wav2Vec2SSL:
    """The pretraining network saved by ``save_pretrained`` (objective from ``config.json``)."""
    return cast(Wav2Vec2SSL, hub.load_pretrained(model_dir, expect=MODEL_TYPE).model)


def load_heads(net: Wav2Vec2SSL, heads: dict[str, Tensor], source: str | os.PathLike[str]) -> None:
    """Load the quantizer and projections; all of them must be there with matching shapes."""
    ours = {k: v for k, v in net.state_dict().items() if k.startswith(_HEADS)}
    bad = sorted(k for k in ours if k not in heads or heads[k].shape != ours[k].shape)
    if bad:
        raise ValueError(f"{source}: pretraining heads missing or of another shape: {bad}")
    net.load_state_dict(heads, strict=False)
