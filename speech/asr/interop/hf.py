"""transformers wav2vec2 checkpoints (wav2vec2, XLS-R, MMS) to the suite's ``CTCModel`` and back.

Import: ``python scripts/convert_checkpoint.py import=<hf dir> output=<suite dir> [target_lang=<mms vocab key>]``
Export: ``python scripts/convert_checkpoint.py export=<suite dir> output=<hf dir>``

A directory that cannot be imported (weights that do not fit config.json, a tokenizer whose blank the head
cannot emit ...) raises ``ValueError`` with one line naming it and the mismatch; the command prints that line.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from safetensors.torch import load_file, save
from torch import Tensor

from common.io import atomic_open
from speech.asr.config import CTCModelConfig
from speech.asr.interop.vocab import TokenVocab, vocab_from_hf
from speech.asr.model import CTCModel
from speech.audio import SAMPLE_RATE
from speech.encoders.wav2vec2 import Wav2Vec2Config
from speech.encoders.wav2vec2_hf import (
    config_to_hf,
    encoder_state_from_hf,
    encoder_state_to_hf,
    read_feature_extractor,
    read_json,
    read_state,
)
from speech.encoders.wav2vec2_hf import load_hf_config as load_hf_config
from speech.encoders.wav2vec2_hf import load_hf_encoder as load_hf_encoder
from text.char_vocab import SPACE, CharVocab

log = logging.getLogger(__name__)

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
    cfg = config_to_hf(model.cfg.encoder, (len(vocab), vocab.blank_id))
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


def run(cfg: DictConfig) -> Path:
    """``scripts/convert_checkpoint.py``: import ``cfg.import`` or export ``cfg.export`` into ``cfg.output``."""
    from speech.asr.hub import load_model, save_pretrained

    if (cfg["import"] is None) == (cfg.export is None):
        raise SystemExit("convert_checkpoint: give one of import=<transformers dir> and export=<suite dir> "
                         "(python scripts/convert_checkpoint.py --help lists the keys)")
    try:
        if cfg["import"] is not None:
            model, tokens = load_hf(cfg["import"], cfg.target_lang)
            out = save_pretrained(model, tokens, cfg.output, source=str(cfg["import"]))
        else:
            suite_model, vocab = load_model(cfg.export)
            out = export_hf(suite_model, vocab, cfg.output)
    except (ValueError, FileNotFoundError) as e:  # bad input: its one-line reason, not a traceback
        raise SystemExit(f"error: {e}") from None
    print(f"wrote {out}")
    return Path(out)


def main(argv: list[str]) -> Path:
    """``python scripts/convert_checkpoint.py`` in-process, ``argv`` its ``key=value`` words."""
    from common.runner import compose_and_run

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return compose_and_run("convert_checkpoint", argv, run)
