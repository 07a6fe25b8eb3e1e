"""common.metrics: corpus-level CER/WER (errors summed, not averaged), per language and overall."""

from __future__ import annotations

import pytest
import torch

from common.metrics import ErrorCounts, ErrorRates, LanguageErrorRates, error_counts, format_table

# Hand-computed: (char errors, ref chars, word errors, ref words).
#   en "the cat sat" vs itself: 0/11, 0/3
#   en "a dog" -> "a dig": one substitution, 1/5 chars, 1/2 words
#   uk "так" -> "та": one deletion, 1/3 chars, 1/1 words
#   hi "नमस्ते" (6 code points) -> "": 6/6 chars, 1/1 words
HYPS = ["the cat sat", "a dig", "та", ""]
REFS = ["the cat sat", "a dog", "так", "नमस्ते"]
LANGS = ["en", "en", "uk", "hi"]


@pytest.mark.parametrize(
    ("hyp", "ref", "expected"),
    [
        ("hello world", "hello world", (0, 11, 0, 2)),
        ("helo wrld", "hello world", (2, 11, 2, 2)),
        ("", "abc", (3, 3, 1, 1)),
        ("abc", "", (3, 0, 1, 0)),
        ("a b c", "a c", (2, 3, 1, 2)),  # insert "b" and a space; one inserted word
        ("c b a", "a b c", (2, 5, 2, 3)),
        ("та", "так", (1, 3, 1, 1)),
        ("", "नमस्ते", (6, 6, 1, 1)),
    ],
)
def test_error_counts(hyp: str, ref: str, expected: tuple[int, int, int, int]) -> None:
    assert tuple(error_counts(hyp, ref)) == expected


def test_error_counts_equal_torchaudio_edit_distance() -> None:
    """The C++ Levenshtein gives torchaudio's (pure Python) edit distance, on characters and on words."""
    import random

    from torchaudio.functional import edit_distance

    rng = random.Random(0)
    for _ in range(300):
        hyp, ref = ("".join(rng.choice("ab cé") for _ in range(rng.randint(0, 30))) for _ in range(2))
        assert error_counts(hyp, ref) == (edit_distance(list(ref), list(hyp)), len(ref),
                                          edit_distance(ref.split(), hyp.split()), len(ref.split()))


def test_error_counts_extra_whitespace_is_not_a_word() -> None:
    # Words come from str.split(), so runs of spaces don't create empty words.
    assert error_counts("a  b", "a b")[2:] == (0, 2)


def test_error_count_rate() -> None:
    assert ErrorCounts(3, 12).rate == 0.25
    assert ErrorCounts(0, 0).rate == 0.0
    assert ErrorCounts(2, 0).rate == 2.0  # insertions against an empty reference still count


def test_error_rates_summed_per_language() -> None:
    rates = ErrorRates()
    rates.update(HYPS, REFS, LANGS)
    s = rates.summary()
    assert list(s) == ["en", "hi", "uk", "all"]
    assert s["en"] == pytest.approx({"cer": 1 / 16, "wer": 1 / 5, "n": 2.0})
    assert s["uk"] == pytest.approx({"cer": 1 / 3, "wer": 1.0, "n": 1.0})
    assert s["hi"] == pytest.approx({"cer": 1.0, "wer": 1.0, "n": 1.0})
    assert s["all"] == pytest.approx({"cer": 8 / 25, "wer": 3 / 7, "n": 4.0})
    # Corpus-level, not the mean of per-utterance rates (which would be 0.3833 and 0.625).
    assert s["all"]["cer"] != pytest.approx((0 + 1 / 5 + 1 / 3 + 1) / 4)
    assert s["all"]["wer"] != pytest.approx((0 + 1 / 2 + 1 + 1) / 4)
    assert (rates.cer["all"].errors, rates.cer["all"].ref_len) == (8, 25)
    assert (rates.wer["all"].errors, rates.wer["all"].ref_len) == (3, 7)


def test_error_rates_accumulate_across_updates() -> None:
    one = ErrorRates()
    one.update(HYPS, REFS, LANGS)
    split = ErrorRates()
    split.update(HYPS[:1], REFS[:1], LANGS[:1])
    split.update(HYPS[1:3], REFS[1:3], LANGS[1:3])
    split.update(HYPS[3:], REFS[3:], LANGS[3:])
    assert split.summary() == one.summary()


def test_error_rates_mismatched_lengths_raise() -> None:
    with pytest.raises(ValueError):
        ErrorRates().update(["a"], ["a", "b"], ["en", "en"])


def test_error_rates_empty() -> None:
    assert ErrorRates().summary() == {}


def test_format_table() -> None:
    rates = ErrorRates()
    rates.update(HYPS, REFS, LANGS)
    assert format_table(rates.summary()).splitlines() == [
        "lang            n   CER %   WER %",
        "en              2    6.25   20.00",
        "hi              1  100.00  100.00",
        "uk              1   33.33  100.00",
        "all             4   32.00   42.86",
    ]


def test_format_table_empty_is_header_only() -> None:
    assert format_table({}) == "lang            n   CER %   WER %"


def test_language_error_rates_with_other() -> None:
    metric = LanguageErrorRates(["en", "uk", "it"])
    metric.update(HYPS, REFS, LANGS)
    out = metric.compute()
    # "hi" is not in the list, so it is counted under "other"; "it" saw nothing and is left out.
    assert set(out) == {"en", "uk", "other", "all"}
    assert out["en"] == pytest.approx({"cer": 1 / 16, "wer": 1 / 5, "n": 2.0})
    assert out["uk"] == pytest.approx({"cer": 1 / 3, "wer": 1.0, "n": 1.0})
    assert out["other"] == pytest.approx({"cer": 1.0, "wer": 1.0, "n": 1.0})
    assert out["all"] == pytest.approx({"cer": 8 / 25, "wer": 3 / 7, "n": 4.0})
    assert metric.counts.dtype == torch.long
    assert metric.counts.tolist() == [
        [1, 16, 1, 5, 2],
        [1, 3, 1, 1, 1],
        [0, 0, 0, 0, 0],
        [6, 6, 1, 1, 1],
    ]


def test_language_error_rates_match_error_rates() -> None:
    metric = LanguageErrorRates(["en", "uk", "hi"])
    reference = ErrorRates()
    for i in range(len(HYPS)):
        metric.update(HYPS[i : i + 1], REFS[i : i + 1], LANGS[i : i + 1])
        reference.update(HYPS[i : i + 1], REFS[i : i + 1], LANGS[i : i + 1])
    got, want = metric.compute(), reference.summary()
    assert set(got) == set(want) == {"en", "uk", "hi", "all"}
    for lang in want:
        assert got[lang] == pytest.approx(want[lang]), lang


def test_language_error_rates_reset() -> None:
    metric = LanguageErrorRates(["en"])
    metric.update(["x"], ["y"], ["en"])
    assert metric.compute()["en"]["cer"] == 1.0
    metric.reset()
    assert int(metric.counts.sum()) == 0
    metric.update(["y"], ["y"], ["en"])
    assert metric.compute()["en"] == {"cer": 0.0, "wer": 0.0, "n": 1.0}


def test_language_error_rates_merge_is_summed() -> None:
    # What DDP does across ranks: states are summed, so rates stay corpus-level.
    a = LanguageErrorRates(["en", "uk"])
    b = LanguageErrorRates(["en", "uk"])
    a.update(HYPS[:2], REFS[:2], LANGS[:2])
    b.update(HYPS[2:], REFS[2:], LANGS[2:])
    a.merge_state(b)
    whole = LanguageErrorRates(["en", "uk"])
    whole.update(HYPS, REFS, LANGS)
    assert torch.equal(a.counts, whole.counts)
    assert a.compute()["all"] == pytest.approx({"cer": 8 / 25, "wer": 3 / 7, "n": 4.0})
