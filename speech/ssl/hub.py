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
from typing import Any

from safetensors.torch import save
from torch import Tensor

from common.io import atomic_open
from speech.asr.interop.hf import config_to_hf, encoder_state_from_hf, load_hf_config, read_state
from speech.encoders.wav2vec2 import Wav2Vec2Config
from speech.ssl.config import SSLObjectiveConfig
from speech.ssl.model import Wav2Vec2SSL

_HEADS = ("quantizer.", "project_q.", "project_hid.")
"""Keys of the pretraining parts outside the encoder."""


def _json(path: Path, data: dict[str, Any]) -> None:
    with atomic_open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, ensure_ascii=False)


def save_pretrained(net: Wav2Vec2SSL, out_dir: str | os.PathLike[str]) -> Path:
    """Write the encoder and the pretraining heads as a transformers wav2vec2 directory (each file atomically)."""
    from speech.asr.interop.hf import encoder_state_to_hf

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    enc, o = net.cfg, net.objective
    state = encoder_state_to_hf({k: v.detach().cpu() for k, v in net.encoder.state_dict().items()})
    state.update({k: v.detach().cpu() for k, v in net.state_dict().items() if k.startswith(_HEADS)})
    with atomic_open(out / "model.safetensors", "wb") as f:
        f.write(save({k: v.contiguous() for k, v in state.items()}, metadata={"format": "pt"}))
    cfg = config_to_hf(enc)
    cfg.update(
        architectures=["Wav2Vec2ForPreTraining"], num_codevector_groups=o.num_groups,
        num_codevectors_per_group=o.num_vars, codevector_dim=o.codevector_dim, proj_codevector_dim=o.proj_dim,
        num_negatives=o.num_negatives, contrastive_logits_temperature=o.logit_temp,
        diversity_loss_weight=o.diversity_weight, mask_time_prob=o.mask.prob, mask_time_length=o.mask.length,
        mask_time_min_masks=o.mask.min_spans, ssl_objective=asdict(o),
    )
    _json(out / "config.json", cfg)
    _json(out / "preprocessor_config.json", {
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
    d = Path(model_dir)
    meta = json.loads((d / "config.json").read_text(encoding="utf-8"))
    if "ssl_objective" not in meta:
        raise ValueError(f"{d}/config.json: no ssl_objective (not written by speech.ssl.hub.save_pretrained)")
    enc_cfg, enc_state, heads = read_pretrained(d)
    net = Wav2Vec2SSL(enc_cfg, SSLObjectiveConfig(**meta["ssl_objective"]))
    net.encoder.load_state_dict(enc_state)
    load_heads(net, heads, d)
    return net.eval()


def load_heads(net: Wav2Vec2SSL, heads: dict[str, Tensor], source: str | os.PathLike[str]) -> None:
    """Load the quantizer and projections; all of them must be there with matching shapes."""
    ours = {k: v for k, v in net.state_dict().items() if k.startswith(_HEADS)}
    bad = sorted(k for k in ours if k not in heads or heads[k].shape != ours[k].shape)
    if bad:
        raise ValueError(f"{source}: pretraining heads missing or of another shape: {bad}")
    net.load_state_dict(heads, strict=False)
