"""Duration model directories through the suite's hub: ``config.json`` + ``model.safetensors`` + ``units.json``.

Public API::

    save_pretrained(model, vocab, out_dir, langs=[...]) -> Path   # model_type "tts_duration"
    loaded = from_pretrained(model_dir)   # .model (DurationModel, eval), .vocab (UnitVocab), .langs, .lang_ids(...)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from common import hub
from speech.tts.duration import DurationModel, duration_config
from speech.tts.vocab import UnitVocab

MODEL_TYPE = "tts_duration"

UNITS = hub.SideFile("units.json", lambda vocab, path: vocab.save(path), UnitVocab.load)
"""The units the model knows (the same file format as the acoustic model's)."""


@hub.register_model_type(MODEL_TYPE, files={"vocab": UNITS})
def build_duration_model(d: dict[str, Any]) -> nn.Module:
    """A ``DurationModel`` with random weights from a ``config.json`` dict."""
    return DurationModel(duration_config(d))


def save_pretrained(model: DurationModel, vocab: UnitVocab, out_dir: str | os.PathLike[str],
                    langs: Sequence[str] = (), **meta: Any) -> Path:
    """Write a self-contained model directory, each file atomically; ``langs`` in the order of language ids 1..n."""
    if len(vocab) != model.cfg.vocab_size:
        raise ValueError(f"the vocabulary has {len(vocab)} ids but the model embeds {model.cfg.vocab_size}")
    if len(langs) + 1 != model.cfg.num_langs:
        raise ValueError(f"{len(langs)} languages for a model with {model.cfg.num_langs - 1} language ids")
    return hub.save_pretrained(model, out_dir, model_type=MODEL_TYPE, files={"vocab": vocab}, langs=list(langs),
                               **meta)


@dataclass
class DurationPredictor:
    """A loaded duration model with its units and languages."""

    model: DurationModel
    vocab: UnitVocab
    langs: list[str]

    def lang_ids(self, langs: Sequence[str | None]) -> Tensor:
        """Language ids [B] (0 for a language the model was not trained on)."""
        index = {lang: i + 1 for i, lang in enumerate(self.langs)}
        return torch.tensor([index.get(lang or "", 0) for lang in langs], dtype=torch.long)

    def predict(self, units: Sequence[Sequence[str]], langs: Sequence[str | None],
                known: Sequence[Sequence[int | None]] | None = None, scale: float = 1.0,
                total: Sequence[int] | None = None) -> list[list[int]]:
        """Frames per unit of each row; ``known`` gives the prompt's durations (None where to predict).

        ``scale`` and ``total``: see ``DurationModel.predict``. Units the model does not know are a ``ValueError``.
        """
        n = max(len(u) for u in units)
        ids = torch.zeros(len(units), n, dtype=torch.long)
        ctx = torch.zeros(len(units), n)
        mask = torch.zeros(len(units), n, dtype=torch.bool)
        for b, row in enumerate(units):
            ids[b, : len(row)] = torch.tensor(self.vocab.encode(row, strict=True))
            for i, d in enumerate(known[b] if known is not None else []):
                if d is not None:
                    ctx[b, i], mask[b, i] = float(d), True
        dev = next(self.model.parameters()).device
        out = self.model.predict(ids.to(dev), ctx.to(dev), mask.to(dev), self.lang_ids(langs).to(dev), scale=scale,
                                 total=list(total) if total is not None else None)
        return [out[b, : len(row)].tolist() for b, row in enumerate(units)]


def from_pretrained(model_dir: str | os.PathLike[str], device: str | torch.device = "cpu") -> DurationPredictor:
    """Load a ``tts_duration`` directory; a broken one is a ``ModelDirError`` naming it."""
    loaded = hub.load_pretrained(model_dir, device, expect=MODEL_TYPE)
    model, vocab = loaded.model, loaded.files["vocab"]
    langs = loaded.config.get("langs", [])
    if not isinstance(model, DurationModel) or len(vocab) != model.cfg.vocab_size:
        raise hub.ModelDirError(f"{model_dir}: {UNITS.name} has {len(vocab)} ids but the model embeds "
                                f"{getattr(getattr(model, 'cfg', None), 'vocab_size', '?')}")
    if not isinstance(langs, list) or len(langs) + 1 != model.cfg.num_langs:
        raise hub.ModelDirError(f"{model_dir}: config.json 'langs' must list the model's "
                                f"{model.cfg.num_langs - 1} languages")
    return DurationPredictor(model, vocab, [str(x) for x in langs])
