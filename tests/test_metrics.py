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


# ---- detection, classification, retrieval, translation and per-group metrics -------------------------------------

import math  # noqa: E402

import numpy as np  # noqa: E402

from common.metrics import bleu, chrf, per_group  # noqa: E402
from common.metrics_retrieval import hit_at_k, mrr, recall_at_k, retrieval_metrics  # noqa: E402
from common.scoring import (  # noqa: E402
    auroc,
    balanced_accuracy,
    cllr,
    eer,
    expected_calibration_error,
    macro_f1,
    min_dcf,
)


def _trials(n_tar: int = 300, n_non: int = 700, shift: float = 1.5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scores = np.concatenate([rng.normal(shift, 1.0, n_tar), rng.normal(0.0, 1.0, n_non)])
    return scores, np.concatenate([np.ones(n_tar, bool), np.zeros(n_non, bool)])


def _rates(scores: np.ndarray, labels: np.ndarray, threshold: float) -> tuple[float, float]:
    """(miss, false alarm) when ``score >= threshold`` is accepted, by counting."""
    return float(np.mean(scores[labels] < threshold)), float(np.mean(scores[~labels] >= threshold))


def test_eer_equals_torchmetrics_and_brute_force() -> None:
    from torchmetrics.functional.classification import binary_eer

    scores, labels = _trials()
    value, threshold = eer(scores, labels)
    assert value == pytest.approx(float(binary_eer(torch.tensor(scores), torch.tensor(labels).long())), abs=1e-7)
    # Brute force over every threshold: the closest miss / false-alarm pair, and the returned threshold gives it.
    pairs = [_rates(scores, labels, t) for t in np.unique(scores)]
    best = min(pairs, key=lambda p: abs(p[0] - p[1]))
    assert value == pytest.approx(sum(best) / 2)
    assert sum(_rates(scores, labels, threshold)) / 2 == pytest.approx(value)
    # Many Gaussian trials: the EER of N(2, 1) against N(0, 1) is Phi(-1) = 0.1587.
    big, big_labels = _trials(4000, 4000, shift=2.0, seed=1)
    assert eer(big, big_labels)[0] == pytest.approx(0.5 * math.erfc(1 / math.sqrt(2)), abs=0.015)


def test_eer_known_values_and_validation() -> None:
    labels = [1, 1, 0, 0]
    assert eer([0.9, 0.8, 0.2, 0.1], labels) == (0.0, 0.8)  # perfect separation; accept from the lowest target
    assert eer([0.1, 0.2, 0.8, 0.9], labels)[0] == 1.0  # reversed
    assert eer(torch.tensor([0.9, 0.1, 0.8, 0.2]), torch.tensor([True, False, False, True]))[0] == 0.5
    with pytest.raises(ValueError, match="same length"):
        eer([0.1, 0.2, 0.3], labels)
    with pytest.raises(ValueError, match="both target and non-target"):
        eer([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="0/1"):
        eer([0.1, 0.2], [1, 2])
    with pytest.raises(ValueError, match="finite"):
        eer([0.1, float("nan")], [1, 0])


def test_min_dcf_equals_the_nist_formula_by_brute_force() -> None:
    scores, labels = _trials(seed=2)
    for p_target, c_miss, c_fa in [(0.01, 1.0, 1.0), (0.05, 1.0, 10.0), (0.5, 1.0, 1.0)]:
        value, threshold = min_dcf(scores, labels, p_target, c_miss, c_fa)
        # NIST's normalised cost P_miss + beta * P_fa (beta = c_fa (1 - p) / (c_miss p)), over every threshold and
        # the two trivial systems; normalised by the cheaper trivial system when that is accepting everything.
        beta = c_fa * (1 - p_target) / (c_miss * p_target)
        costs = [m + beta * fa for m, fa in (_rates(scores, labels, t) for t in [*np.unique(scores), np.inf])]
        want = min(costs) * (c_miss * p_target) / min(c_miss * p_target, c_fa * (1 - p_target))
        assert value == pytest.approx(want), (p_target, c_miss, c_fa)
        miss, fa = _rates(scores, labels, threshold)
        assert value == pytest.approx((c_miss * p_target * miss + c_fa * (1 - p_target) * fa)
                                      / min(c_miss * p_target, c_fa * (1 - p_target)))
        assert 0 < value <= 1
    assert min_dcf([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0])[0] == 0.0
    assert min_dcf([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0])[0] == 1.0  # no better than a trivial system
    with pytest.raises(ValueError, match="p_target"):
        min_dcf(scores, labels, p_target=1.0)


def test_cllr_equals_the_brute_force_formula() -> None:
    llrs, labels = _trials(seed=3)
    llrs = 2.0 * llrs - 1.5
    total_tar = sum(math.log2(1 + 1 / math.exp(s)) for s in llrs[labels])
    total_non = sum(math.log2(1 + math.exp(s)) for s in llrs[~labels])
    want = 0.5 * (total_tar / labels.sum() + total_non / (~labels).sum())
    assert cllr(llrs, labels) == pytest.approx(want)
    assert cllr(np.zeros(10), np.arange(10) % 2) == pytest.approx(1.0)  # "I don't know" costs exactly 1 bit
    assert cllr([50.0, 60.0, -70.0], [1, 1, 0]) == pytest.approx(0.0, abs=1e-20)
    assert cllr([-1000.0, 1000.0], [1, 0]) == pytest.approx(1000 / math.log(2))  # confidently wrong, no overflow


def test_auroc_equals_sklearn_and_torchmetrics() -> None:
    from sklearn.metrics import roc_auc_score
    from torchmetrics.functional.classification import binary_auroc

    scores, labels = _trials(seed=4)
    assert auroc(scores, labels) == pytest.approx(roc_auc_score(labels, scores))
    assert auroc(scores, labels) == pytest.approx(float(binary_auroc(torch.tensor(scores).sigmoid(),
                                                                     torch.tensor(labels).long())), abs=1e-6)
    assert auroc([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0]) == 1.0
    assert auroc([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0]) == 0.0
    assert auroc([0.5] * 4, [1, 0, 1, 0]) == 0.5


def test_macro_f1_and_balanced_accuracy_by_hand_and_by_sklearn() -> None:
    from sklearn.metrics import balanced_accuracy_score, f1_score
    from torchmetrics.functional.classification import multiclass_f1_score

    labels = [0, 0, 1, 1, 2, 2]
    preds = [0, 1, 1, 1, 2, 0]
    # F1 per class: 0.5 (P 1/2, R 1/2), 0.8 (P 2/3, R 1), 2/3 (P 1, R 1/2).
    assert macro_f1(preds, labels) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert balanced_accuracy(preds, labels) == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    logits = torch.nn.functional.one_hot(torch.tensor(preds), 3).float() * 3 - 1  # class scores [N, C]
    assert macro_f1(logits, labels) == macro_f1(preds, labels)
    assert macro_f1(preds, labels, classes=[0, 1, 2, 3]) == pytest.approx((0.5 + 0.8 + 2 / 3) / 4)
    rng = np.random.default_rng(5)
    y, p = rng.integers(0, 5, 200), rng.integers(0, 5, 200)
    assert macro_f1(p, y) == pytest.approx(f1_score(y, p, average="macro"))
    assert macro_f1(p, y) == pytest.approx(float(multiclass_f1_score(torch.tensor(p), torch.tensor(y), 5)))
    assert balanced_accuracy(p, y) == pytest.approx(balanced_accuracy_score(y, p))
    with pytest.raises(ValueError, match="same length"):
        macro_f1(preds[:3], labels)


def _ece_by_hand(conf: np.ndarray, correct: np.ndarray, n_bins: int) -> float:
    total = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        inside = (conf >= lo) & ((conf < hi) if b < n_bins - 1 else (conf <= hi))
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - conf[inside].mean())
    return total


def test_expected_calibration_error_equals_equal_width_bins() -> None:
    rng = np.random.default_rng(6)
    p = rng.uniform(0.01, 0.99, 500)
    y = (rng.uniform(size=500) < p**1.5).astype(int)  # over-confident in the positive class
    assert expected_calibration_error(p, y, n_bins=10) == pytest.approx(_ece_by_hand(p, y.astype(float), 10), abs=1e-6)
    probs = rng.dirichlet(np.ones(4), 300)
    labels = rng.integers(0, 4, 300)
    want = _ece_by_hand(probs.max(1), (probs.argmax(1) == labels).astype(float), 15)
    assert expected_calibration_error(torch.tensor(probs), labels) == pytest.approx(want, abs=1e-6)
    assert expected_calibration_error([0.7] * 10, [1] * 7 + [0] * 3) == pytest.approx(0.0, abs=1e-6)
    assert expected_calibration_error([0.9] * 4, [0] * 4) == pytest.approx(0.9)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        expected_calibration_error([1.5, 0.2], [1, 0])
    with pytest.raises(ValueError, match="same length"):
        expected_calibration_error([0.5, 0.2], [1])


def test_retrieval_metrics_by_hand() -> None:
    scores = np.array([[0.9, 0.1, 0.5], [0.2, 0.3, 0.1]])
    relevant = [[2], [0, 2]]  # query 0: candidate 2 ranks 2nd; query 1: ranks 2nd and 3rd
    out = retrieval_metrics(scores, relevant, ks=(1, 2))
    assert out == pytest.approx({"recall@1": 0.0, "hit@1": 0.0, "recall@2": 0.75, "hit@2": 1.0, "mrr": 0.5})
    mask = np.array([[False, False, True], [True, False, True]])
    assert retrieval_metrics(torch.tensor(scores), torch.tensor(mask), ks=(1, 2)) == out
    assert retrieval_metrics(scores, [2, 0], ks=(1, 2))["mrr"] == 0.5  # one id per query
    # Ties never flatter: with all scores equal the relevant candidates rank after the irrelevant ones.
    assert mrr(np.zeros((2, 5)), [[1], [0, 4]]) == pytest.approx((1 / 5 + 1 / 4) / 2)
    with pytest.raises(ValueError, match="query 1 has no relevant"):
        mrr(scores, [[2], []])
    with pytest.raises(ValueError, match="3 queries"):
        mrr(scores, [[2], [0], [1]])
    with pytest.raises(ValueError, match=r"in \[0, 3\)"):
        mrr(scores, [[2], [3]])
    with pytest.raises(ValueError, match="need one row per query"):
        mrr(scores, mask[:1])
    with pytest.raises(ValueError, match="positive integers"):
        recall_at_k(scores, relevant, 0)


def test_retrieval_metrics_equal_torchmetrics() -> None:
    from torchmetrics.functional.retrieval import retrieval_hit_rate, retrieval_recall, retrieval_reciprocal_rank

    rng = np.random.default_rng(7)
    scores = rng.uniform(0.01, 1.0, size=(25, 40))  # positive: torchmetrics' MRR drops relevant items scored <= 0
    relevant = [rng.choice(40, size=rng.integers(1, 4), replace=False).tolist() for _ in range(25)]
    mask = np.zeros((25, 40), bool)
    for q, ids in enumerate(relevant):
        mask[q, ids] = True
    s, m = torch.tensor(scores), torch.tensor(mask)
    for k in (1, 5, 10):
        want_recall = np.mean([float(retrieval_recall(s[q], m[q], top_k=k)) for q in range(25)])
        want_hit = np.mean([float(retrieval_hit_rate(s[q], m[q], top_k=k)) for q in range(25)])
        assert recall_at_k(scores, relevant, k) == pytest.approx(want_recall)
        assert hit_at_k(scores, relevant, k) == pytest.approx(want_hit)
    assert mrr(scores, relevant) == pytest.approx(np.mean([float(retrieval_reciprocal_rank(s[q], m[q]))
                                                           for q in range(25)]))
    brute = [1 / (1 + min(int((scores[q] > scores[q, j]).sum()) for j in ids)) for q, ids in enumerate(relevant)]
    assert mrr(scores, relevant) == pytest.approx(np.mean(brute))
    assert 0 < mrr(scores, relevant) < 1


HYPS_MT = ["the cat sat on the mat today", "a quick brown fox jumps over the dog", "we will see you tomorrow morning"]
REFS_MT = ["the cat sat on a mat today", "the quick brown fox jumps over the lazy dog", "see you tomorrow morning"]
REFS_MT2 = ["today the cat sat on the mat", "a fast brown fox jumps over the dog", "we will see you in the morning"]


def test_bleu_and_chrf_equal_sacrebleu_and_torchmetrics() -> None:
    import sacrebleu
    from torchmetrics.functional.text import chrf_score, sacre_bleu_score

    assert bleu(HYPS_MT, REFS_MT) == pytest.approx(sacrebleu.corpus_bleu(HYPS_MT, [REFS_MT]).score)
    assert chrf(HYPS_MT, REFS_MT) == pytest.approx(sacrebleu.corpus_chrf(HYPS_MT, [REFS_MT]).score)
    # torchmetrics has its own implementations: an independent check (its scale is 0-1).
    per_hyp = [[r] for r in REFS_MT]
    assert bleu(HYPS_MT, REFS_MT) == pytest.approx(100 * float(sacre_bleu_score(HYPS_MT, per_hyp)), abs=1e-3)
    tm_chrf = chrf_score(HYPS_MT, per_hyp, n_word_order=0)
    assert isinstance(tm_chrf, torch.Tensor)
    assert chrf(HYPS_MT, REFS_MT) == pytest.approx(100 * float(tm_chrf), abs=1e-3)
    # chrF++ (torchmetrics' word n-grams differ from sacrebleu's in the third decimal).
    assert chrf(HYPS_MT, REFS_MT, word_order=2) == pytest.approx(sacrebleu.corpus_chrf(HYPS_MT, [REFS_MT],
                                                                                      word_order=2).score)
    assert chrf(HYPS_MT, REFS_MT, word_order=2) != pytest.approx(chrf(HYPS_MT, REFS_MT))
    # Two reference streams: every hypothesis may match either.
    two = bleu(HYPS_MT, [REFS_MT, REFS_MT2])
    assert two == pytest.approx(sacrebleu.corpus_bleu(HYPS_MT, [REFS_MT, REFS_MT2]).score)
    assert two > bleu(HYPS_MT, REFS_MT)
    assert bleu(REFS_MT, REFS_MT) == pytest.approx(100.0)
    assert chrf(REFS_MT, REFS_MT) == pytest.approx(100.0)
    assert bleu(["我们明天见"], ["我们明天见"], tokenize="zh") == pytest.approx(100.0)
    with pytest.raises(ValueError, match="3 strings"):
        bleu(HYPS_MT, REFS_MT[:2])
    with pytest.raises(ValueError, match="no hypotheses"):
        chrf([], [])


def test_per_group_breaks_any_metric_down() -> None:
    scores, labels = _trials(40, 60, seed=8)
    langs = np.array(["deu_Latn", "ukr_Cyrl"] * 50)
    out = per_group(eer, langs, scores, labels)
    assert list(out) == ["deu_Latn", "ukr_Cyrl", "all"]
    assert out["deu_Latn"] == eer(scores[::2], labels[::2])
    assert out["ukr_Cyrl"] == eer(scores[1::2], labels[1::2])
    assert out["all"] == eer(scores, labels)
    assert per_group(min_dcf, list(langs), torch.tensor(scores), torch.tensor(labels), p_target=0.1)["all"] == \
        min_dcf(scores, labels, p_target=0.1)
    # Queries of a retrieval matrix grouped by source; the candidates stay whole.
    q_scores = np.array([[0.9, 0.1, 0.5], [0.2, 0.3, 0.1], [0.1, 0.2, 0.7]])
    by_source = per_group(mrr, ["web", "books", "web"], q_scores, [[2], [0, 2], [2]])
    assert by_source == pytest.approx({"books": 0.5, "web": 0.75, "all": 2 / 3})
    assert per_group(bleu, ["a", "b", "a"], HYPS_MT, REFS_MT)["a"] == bleu(HYPS_MT[::2], REFS_MT[::2])
    with pytest.raises(ValueError, match="input 1 has 99 items"):
        per_group(eer, langs, scores, labels[:99])
    with pytest.raises(ValueError, match="group 'deu_Latn': need both"):
        per_group(eer, langs, scores, np.arange(100) % 2)  # even rows: no targets
    with pytest.raises(ValueError, match='named "all"'):
        per_group(eer, ["all", "x"], [0.1, 0.2], [1, 0])
