"""CTC beam search with word-level KenLM models through pyctcdecode (optional: ``pip install pyctcdecode kenlm``).

A model directory holds one ARPA model per language in ``kenlm/<lang>.arpa`` (written by
``scripts/build_lm.py kenlm=true`` or ``scripts/build_word_lm.py``) and ``kenlm.json`` with the fusion
weights tuned on dev. ``Transcriber`` uses them with ``decoder=kenlm``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from common.io import atomic_open
from text.char_vocab import CharVocab

_MASKED = -1e4  # far below pyctcdecode's pruning threshold, but finite
_SILENT, _SILENT_END = 0xF0000, 0xFFFFE  # Unicode's supplementary private use area


def require_pyctcdecode() -> Any:
    try:
        import kenlm  # noqa: F401
        import pyctcdecode
    except ImportError as e:
        raise ImportError(f"decoder=kenlm needs pyctcdecode and kenlm ({e}); pip install pyctcdecode kenlm") from e
    return pyctcdecode


class WordLMDecoders:
    """One pyctcdecode decoder per language, each with that language's KenLM model."""

    FILE = "kenlm.json"

    def __init__(self, vocab: CharVocab, arpa: dict[str, Path], alpha: float = 0.5, beta: float = 1.0,
                 beam: int = 32):
        self.vocab, self.arpa = vocab, dict(arpa)
        self.alpha, self.beta, self.beam = alpha, beta, beam
        self._decoders: dict[str, Any] = {}

    @property
    def lms(self) -> dict[str, Path]:
        """The languages with a model (the same question ``LanguageModels.lms`` answers)."""
        return self.arpa

    def labels(self) -> list[str]:
        # pyctcdecode wants "" for the blank and distinct one-character stand-ins for the silent ids
        # (UNK, an imported table's <s> ...): private-use characters, removed after decoding.
        silent = set(self.vocab.silent_ids)
        return ["" if i == self.vocab.blank_id else chr(_SILENT + i) if i in silent else t
                for i, t in enumerate(self.vocab.tokens)]

    def _decoder(self, lang: str) -> Any:
        if lang not in self._decoders:
            pyctcdecode = require_pyctcdecode()
            self._decoders[lang] = pyctcdecode.build_ctcdecoder(
                self.labels(), kenlm_model_path=str(self.arpa[lang]), alpha=self.alpha, beta=self.beta)
        return self._decoders[lang]

    def set_weights(self, alpha: float, beta: float) -> None:
        self.alpha, self.beta = alpha, beta
        for d in self._decoders.values():
            d.reset_params(alpha=alpha, beta=beta)

    def decode(self, logp: np.ndarray, vocab: CharVocab, lang: str | None) -> str:
        """Decode one utterance's log-probabilities [T, V]; a language without a model gets greedy-like search."""
        if lang not in self.arpa:
            raise KeyError(f"no KenLM model for language {lang!r}; have {sorted(self.arpa)}")
        allowed = vocab.allowed_ids(lang)
        if allowed is not None:
            masked = np.full_like(logp, _MASKED)
            masked[:, allowed] = logp[:, allowed]
            logp = masked
        text = self._decoder(lang).decode(np.ascontiguousarray(logp, dtype=np.float32), beam_width=self.beam)
        return " ".join("".join(c for c in text if not _SILENT <= ord(c) < _SILENT_END).split())

    def save(self, model_dir: str | os.PathLike[str]) -> Path:
        """Write ``kenlm.json``; the ARPA files must already sit under the model directory."""
        root = Path(model_dir)
        rel = {lang: str(Path(p).resolve().relative_to(root.resolve())) for lang, p in self.arpa.items()}
        path = root / self.FILE
        with atomic_open(path, "w", encoding="utf-8") as f:
            json.dump({"alpha": self.alpha, "beta": self.beta, "beam": self.beam, "arpa": rel}, f, indent=2)
        return path

    @classmethod
    def load(cls, model_dir: str | os.PathLike[str], vocab: CharVocab) -> WordLMDecoders | None:
        root = Path(model_dir)
        path = root / cls.FILE
        if not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        arpa = {lang: root / rel for lang, rel in data["arpa"].items()}
        missing = [str(p) for p in arpa.values() if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"{path}: KenLM model file(s) missing: {', '.join(missing)}")
        return cls(vocab, arpa, float(data["alpha"]), float(data["beta"]), int(data["beam"]))
