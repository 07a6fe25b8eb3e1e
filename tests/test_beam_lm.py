"""Character n-gram LM and CTC prefix beam search with LM fusion."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from speech.asr.beam import LanguageModels, prefix_beam_search
from speech.asr.ctc import greedy_decode
from text.char_lm import EOS, CharNgramLM
from text.char_vocab import CharVocab

TEXTS = ["kannst du das", "bitte komm", "das fenster", "komm bitte", "du kannst kommen"]


def test_lm_is_a_distribution_and_prefers_seen_continuations() -> None:
    lm = CharNgramLM(order=4).fit(TEXTS)
    for history in ("", "k", "kan", "bit", "xyz"):
        total = sum(lm.prob(history, c) for c in lm.alphabet)
        assert total == pytest.approx(1.0, abs=1e-9), history
    assert lm.prob("kan", "n") > lm.prob("kan", "x") > 0
    assert lm.prob("bit", "t") > lm.prob("bit", "e")
    assert lm.logprob("komm", EOS) > math.log(1e-6)
    again = CharNgramLM.from_dict(lm.to_dict())
    assert again.prob("kan", "n") == lm.prob("kan", "n")


def _vocab() -> CharVocab:
    return CharVocab(list("abcdefghijklmnopqrstuvwxyz"), lang_chars={"deu_Latn": "abcdefghijklmnopqrstuvwxyz"})


def _frames(vocab: CharVocab, path: list[tuple[str, float]]) -> np.ndarray:
    """Log-probs [T, V] where each frame puts ``p`` on one symbol and spreads the rest."""
    out = np.full((len(path), len(vocab)), 1e-4)
    for t, (sym, p) in enumerate(path):
        out[t, vocab.index[sym] if sym != "_" else 0] = p
    out /= out.sum(1, keepdims=True)
    return np.log(out)


def test_beam_without_lm_matches_greedy_on_a_clear_path() -> None:
    import torch

    vocab = _vocab()
    logp = _frames(vocab, [("h", 0.9), ("_", 0.9), ("a", 0.8), ("a", 0.9), ("_", 0.9), ("l", 0.9), ("l", 0.7),
                           ("_", 0.9), ("l", 0.9), ("o", 0.9)])
    greedy = greedy_decode(torch.from_numpy(logp)[None], torch.tensor([len(logp)]), vocab)[0]
    assert greedy == "hallo"
    assert prefix_beam_search(logp, vocab, None, alpha=0.0, beta=0.0, beam=4) == "hallo"


def test_lm_fusion_restores_a_doubled_letter_the_audio_leaves_open() -> None:
    vocab = _vocab()
    lm = CharNgramLM(order=5).fit(["bitte"] * 20 + ["bitter", "bitten"])
    # Three t-ish frames: "t t t" (one t) is a little likelier than "t blank t" (two).
    logp = _frames(vocab, [("b", 0.9), ("i", 0.9), ("t", 0.9), ("t", 0.6), ("t", 0.9), ("e", 0.9)])
    logp[3, 0] = np.log(0.35)
    assert prefix_beam_search(logp, vocab, None, 0.0, 0.0) == "bite"
    assert prefix_beam_search(logp, vocab, lm, alpha=1.0, beta=0.0) == "bitte"


def test_language_models_round_trip(tmp_path: Path) -> None:
    lms = LanguageModels.fit({"deu_Latn": TEXTS}, order=3)
    lms.alpha, lms.beta = 0.4, 1.2
    lms.save(tmp_path)
    back = LanguageModels.load(tmp_path)
    assert back is not None and (back.alpha, back.beta) == (0.4, 1.2)
    assert back.lms["deu_Latn"].prob("ka", "n") == lms.lms["deu_Latn"].prob("ka", "n")
    assert LanguageModels.load(tmp_path / "nothing") is None


def test_lm_lexicon_lines_keep_to_the_alphabet_and_are_deterministic() -> None:
    from tests.helpers import load_script

    build_lm = load_script("build_lm")
    alphabet = "абвгґдеєжзиіїйклмнопрстуфхцчшщьюя'"
    lines = build_lm.lexicon_lines("ukr_Cyrl", 2000, alphabet)
    words = " ".join(lines).split()
    assert len(words) > 1000 and all(len(line.split()) <= 8 for line in lines)
    assert set("".join(words)) <= set(alphabet)
    assert "і" in "".join(words) and "и" in "".join(words)
    assert lines == build_lm.lexicon_lines("ukr_Cyrl", 2000, alphabet)
    # A smaller alphabet drops the words it can't spell; an unknown language has no lexicon.
    assert len(" ".join(build_lm.lexicon_lines("ukr_Cyrl", 2000, alphabet.replace("і", ""))).split()) < len(words)
    assert build_lm.lexicon_lines("xyz_Latn", 2000, "abc") == []


def test_beam_search_never_writes_an_imported_tables_special_tokens() -> None:
    from speech.asr.interop.vocab import TokenVocab

    # transformers-style table: <pad> (blank) 0, <s> 1, </s> 2, <unk> 3, then the letters.
    vocab = TokenVocab(["<pad>", "<s>", "</s>", "<unk>", " ", "a", "b"], blank_id=0, unk_id=3, specials=[1, 2])
    logp = np.log(np.full((6, len(vocab)), 0.02))
    for t, best in enumerate([1, 5, 0, 2, 6, 3]):  # the specials win their frames, the blank comes next
        logp[t, 0] = np.log(0.3)
        logp[t, best] = np.log(0.6)
    assert prefix_beam_search(logp, vocab, beam=4) == "ab"
