"""CTC prefix beam search with shallow fusion of a character n-gram LM (Hannun et al., 2014)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from common.io import atomic_open
from text.char_lm import EOS, CharNgramLM
from text.char_vocab import CharVocab

_NEG = -math.inf


def _lse(a: float, b: float) -> float:
    if a == _NEG:
        return b
    if b == _NEG:
        return a
    m = max(a, b)
    return m + math.log1p(math.exp(-abs(a - b)))


def _merge(beams: dict[str, list[float]], text: str, pb: float, pc: float, lm_score: float) -> None:
    """Add a path into ``beams``: probabilities add up; the LM score depends on the text alone."""
    cur = beams.get(text)
    if cur is None:
        beams[text] = [pb, pc, lm_score]
    else:
        cur[0], cur[1] = _lse(cur[0], pb), _lse(cur[1], pc)


def prefix_beam_search(
    logp: np.ndarray,
    vocab: CharVocab,
    lm: CharNgramLM | None = None,
    alpha: float = 0.5,
    beta: float = 1.0,
    beam: int = 8,
    allowed: Sequence[int] | None = None,
    prune: float = -8.0,
) -> str:
    """Decode one utterance's log-probabilities [T, V].

    Score = log P_ctc + alpha * log P_lm + beta * length; ``allowed`` limits the characters
    (a language's alphabet), ``prune`` skips characters far below the frame's best.
    """
    ids = np.asarray(allowed if allowed is not None else range(len(vocab)))
    ids = ids[~np.isin(ids, vocab.silent_ids)]
    beams: dict[str, tuple[float, float, float]] = {"": (0.0, _NEG, 0.0)}  # text -> (p_blank, p_char, lm)
    for frame in logp:
        best = float(frame.max())
        cands = [int(i) for i in ids if frame[i] >= best + prune]
        nxt: dict[str, list[float]] = {}
        blank = float(frame[vocab.blank_id])
        for text, (pb, pc, lms) in beams.items():
            total = _lse(pb, pc)
            _merge(nxt, text, total + blank, _NEG, lms)
            for i in cands:
                ch = vocab.tokens[i]
                p = float(frame[i])
                if text and text[-1] == ch:
                    _merge(nxt, text, _NEG, pc + p, lms)  # the same character continues
                    source = pb  # a repeat needs a blank in between
                else:
                    source = total
                if source == _NEG:
                    continue
                bonus = (alpha * lm.logprob(text, ch) if lm is not None else 0.0) + beta
                _merge(nxt, text + ch, _NEG, source + p, lms + bonus)
        ranked = sorted(nxt.items(), key=lambda kv: _lse(kv[1][0], kv[1][1]) + kv[1][2], reverse=True)
        beams = {t: (v[0], v[1], v[2]) for t, v in ranked[:beam]}

    def final(item: tuple[str, tuple[float, float, float]]) -> float:
        text, (pb, pc, lms) = item
        end = alpha * lm.logprob(text, EOS) if lm is not None else 0.0
        return _lse(pb, pc) + lms + end

    return " ".join(max(beams.items(), key=final)[0].split())


class LanguageModels:
    """Per-language character LMs plus the fusion weights tuned for one acoustic model.

    Saved as ``char_lms.json`` in a model directory; ``Transcriber`` picks it up.
    """

    FILE = "char_lms.json"

    def __init__(self, lms: dict[str, CharNgramLM], alpha: float = 0.3, beta: float = 1.0, beam: int = 8):
        self.lms, self.alpha, self.beta, self.beam = lms, alpha, beta, beam

    @classmethod
    def fit(cls, texts_by_lang: dict[str, list[str]], order: int = 6) -> LanguageModels:
        return cls({lang: CharNgramLM(order).fit(texts) for lang, texts in texts_by_lang.items()})

    def set_weights(self, alpha: float, beta: float) -> None:
        self.alpha, self.beta = alpha, beta

    def decode(self, logp: np.ndarray, vocab: CharVocab, lang: str | None) -> str:
        """Beam search with the language's LM (plain beam search for a language without one)."""
        return prefix_beam_search(logp, vocab, self.lms.get(lang or ""), self.alpha, self.beta, self.beam,
                                  vocab.allowed_ids(lang))

    def save(self, model_dir: str | os.PathLike[str]) -> Path:
        path = Path(model_dir) / self.FILE
        with atomic_open(path, "w", encoding="utf-8") as f:
            json.dump({"alpha": self.alpha, "beta": self.beta, "beam": self.beam,
                       "lms": {lang: lm.to_dict() for lang, lm in self.lms.items()}}, f, ensure_ascii=False)
        return path

    @classmethod
    def load(cls, model_dir: str | os.PathLike[str]) -> LanguageModels | None:
        path = Path(model_dir) / cls.FILE
        if not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        lms = {lang: CharNgramLM.from_dict(d) for lang, d in data["lms"].items()}
        return cls(lms, float(data["alpha"]), float(data["beta"]), int(data["beam"]))
