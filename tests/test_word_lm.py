"""Word-level Kneser-Ney LM in ARPA form, KenLM reading it, and pyctcdecode beam search with it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from speech.asr.kenlm_decode import WordLMDecoders
from text.char_vocab import CharVocab
from text.word_lm import BOS, EOS, KneserNeyLM

TEXTS = [
    "the cat sat on the mat", "the dog sat on the log", "a cat and a dog", "the cat ran",
    "on the mat the cat sat", "san francisco is far", "san francisco is big", "san francisco again",
]


def test_kneser_ney_is_a_distribution_with_continuation_counts() -> None:
    lm = KneserNeyLM(order=3).fit(TEXTS)
    words = [*sorted(lm.vocab), "<unk>"]
    for h in [(), ("the",), ("the", "cat"), ("on", "the"), ("zzz", "the"), (BOS,), (BOS, "the")]:
        assert sum(lm.prob(h, w) for w in words) == pytest.approx(1.0, abs=1e-9), h
    assert lm.prob(("the",), "cat") > lm.prob(("the",), "dog") > lm.prob(("the",), "far")
    # "francisco" is frequent but only ever follows "san": after an unseen word it is less likely
    # than "cat", which follows several different words.
    assert lm.prob(("zzz",), "francisco") < lm.prob(("zzz",), "cat")
    assert lm.prob((), BOS) == pytest.approx(lm.prob((), "<unk>"))  # never seen as a predicted word


def test_kenlm_reads_the_arpa_file_with_the_same_probabilities(tmp_path: Path) -> None:
    kenlm = pytest.importorskip("kenlm")
    lm = KneserNeyLM(order=3)
    model = kenlm.Model(str(lm.write_arpa_for(TEXTS, tmp_path / "lm" / "en.arpa")))
    assert model.order == 3
    for sentence in ["the cat sat on the log", "a dog ran", "san francisco cat zzz"]:
        ours = 0.0
        history: tuple[str, ...] = (BOS,)
        for w in [*sentence.split(), EOS]:
            ours += math.log10(lm.prob(history, w if w in lm.vocab else "<unk>"))
            history = (*history, w)
        assert model.score(sentence, bos=True, eos=True) == pytest.approx(ours, abs=1e-4), sentence


def test_empty_text_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no words"):
        KneserNeyLM().fit(["", "  "])


def _frames(vocab: CharVocab, spelled: list[dict[str, float]]) -> np.ndarray:
    """Log-probs [T, V]: each frame a distribution over a few characters, blanks in between."""
    rows = []
    for probs in spelled:
        for dist in (probs, {"<blank>": 0.9}):
            p = np.full(len(vocab), 1e-4)
            for ch, v in dist.items():
                p[vocab.tokens.index(ch)] = v
            rows.append(np.log(p / p.sum()))
    return np.stack(rows).astype(np.float32)


def test_word_lm_beam_search_prefers_known_words(tmp_path: Path) -> None:
    pytest.importorskip("pyctcdecode")
    vocab = CharVocab(list("catdogmrs"), {"eng_Latn": "acdgmorst"})
    arpa = KneserNeyLM(order=2).write_arpa_for(["the cat", "a cat", "cat sat", "the mat"] * 3,
                                              tmp_path / "kenlm" / "eng_Latn.arpa")
    # The acoustics lean to "cot" (o 0.55 against a 0.45); the LM knows only "cat".
    logp = _frames(vocab, [{"c": 0.9}, {"o": 0.55, "a": 0.45}, {"t": 0.9}])
    plain = WordLMDecoders(vocab, {"eng_Latn": arpa}, alpha=0.0, beta=0.0)
    assert plain.decode(logp, vocab, "eng_Latn") == "cot"
    fused = WordLMDecoders(vocab, {"eng_Latn": arpa}, alpha=1.0, beta=0.0)
    assert fused.decode(logp, vocab, "eng_Latn") == "cat"
    fused.save(tmp_path)
    again = WordLMDecoders.load(tmp_path, vocab)
    assert again is not None and again.alpha == 1.0 and again.decode(logp, vocab, "eng_Latn") == "cat"
    with pytest.raises(KeyError, match="no KenLM model"):
        again.decode(logp, vocab, "deu_Latn")
    arpa.unlink()
    with pytest.raises(FileNotFoundError, match=r"eng_Latn\.arpa"):
        WordLMDecoders.load(tmp_path, vocab)
