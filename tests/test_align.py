"""CTC forced alignment: word and character times from log-probabilities."""

from __future__ import annotations

import itertools

import pytest
import torch

from speech.asr.align import align_text, check_timestamps, min_frames, token_spans
from speech.asr.ctc import greedy_decode
from text.char_vocab import CharVocab

VOCAB = CharVocab(list("abcd"))
STRIDE = 0.04


def peaky(t: int, spans: list[tuple[str, int, int]], confidence: float = 0.9) -> torch.Tensor:
    """Log-probs [T, V]: blank everywhere except ``(char, start, end)`` spans; the rest of the mass spread."""
    ids = torch.zeros(t, dtype=torch.long)
    for ch, s, e in spans:
        ids[s:e] = VOCAB.index[ch]
    p = torch.full((t, len(VOCAB)), (1 - confidence) / (len(VOCAB) - 1))
    p[torch.arange(t), ids] = confidence
    return p.log()


def test_known_boundaries_are_recovered() -> None:
    spans = [("a", 2, 5), ("b", 6, 8), (" ", 9, 10), ("c", 12, 15), ("a", 15, 16), ("d", 20, 22)]
    logp = peaky(25, spans)
    assert token_spans(logp, VOCAB.encode("ab cad")) == [(s, e) for _, s, e in spans]
    words, chars = align_text(logp, "ab cad", VOCAB, STRIDE)
    assert words == [{"word": "ab", "start": 0.08, "end": 0.32}, {"word": "cad", "start": 0.48, "end": 0.88}]
    assert [c["char"] for c in chars] == list("abcad")
    assert chars[3] == {"char": "a", "start": 0.6, "end": 0.64}


def test_repeated_letters_need_a_blank_between() -> None:
    logp = peaky(10, [("b", 1, 3), ("b", 4, 6)])
    assert token_spans(logp, VOCAB.encode("bb")) == [(1, 3), (4, 6)]
    assert min_frames(VOCAB.encode("bb")) == 3
    with pytest.raises(ValueError, match="can't be aligned"):
        token_spans(logp[:2], VOCAB.encode("bb"))


def test_offset_duration_and_masked_alphabets() -> None:
    logp = peaky(30, [("a", 5, 6), ("b", 27, 30)])
    logp[:, VOCAB.index["c"]] = float("-inf")  # a language alphabet that leaves "c" out
    words, _ = align_text(logp, "ab", VOCAB, STRIDE, offset=10.0, duration=11.1)
    assert words == [{"word": "ab", "start": 10.2, "end": 11.1}]  # clipped to the end of the file


def test_greedy_text_aligns_with_monotonic_times_inside_the_file() -> None:
    torch.manual_seed(0)
    logits = torch.randn(300, len(VOCAB)) * 3
    logits[:, 0] += 2.0  # mostly blank, like a trained CTC model
    logp = logits.log_softmax(-1)
    text = greedy_decode(logp[None], torch.tensor([300]), VOCAB)[0]
    duration = 300 * STRIDE
    words, chars = align_text(logp, text, VOCAB, STRIDE, duration=duration)
    assert [w["word"] for w in words] == text.split() and len(words) > 5
    assert "".join(c["char"] for c in chars) == text.replace(" ", "")
    starts = [c["start"] for c in chars]
    assert starts == sorted(starts) and all(0 <= c["start"] < c["end"] <= duration for c in chars)
    assert all(a["end"] <= b["start"] for a, b in itertools.pairwise(words))


def test_timestamp_levels() -> None:
    assert check_timestamps("word") == "word"
    with pytest.raises(ValueError, match="none, word, char"):
        check_timestamps("segment")
