"""The paired statistics against values worked out by hand (and in published tables)."""

import math

import pytest

from modelops.stats import binomial_cdf, clopper_pearson, mcnemar, paired_bootstrap, sign_test_p


def test_exact_mcnemar_p_is_twice_the_smaller_binomial_tail():
    assert sign_test_p(2, 10) == pytest.approx(2 * (1 + 10 + 45) / 1024)
    assert sign_test_p(8, 10) == sign_test_p(2, 10), "two-sided: the direction does not matter"
    assert sign_test_p(5, 10) == 1.0
    assert sign_test_p(0, 0) == 1.0, "no disagreements: no evidence either way"
    assert sign_test_p(0, 6) == pytest.approx(2 / 64)


def test_large_counts_stay_exact_and_finite():
    p = sign_test_p(2400, 5000)
    assert 0.004 < p < 0.006  # normal approximation: z = 2.83 -> 0.0047
    assert binomial_cdf(2400, 5000, 0.5) == pytest.approx(p / 2, rel=1e-9)


def test_clopper_pearson_matches_the_published_table():
    lo, hi = clopper_pearson(2, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.0252, 0.5561)
    assert clopper_pearson(0, 10) == (0.0, pytest.approx(0.3085, abs=1e-4))
    assert clopper_pearson(10, 10) == (pytest.approx(0.6915, abs=1e-4), 1.0)


def test_the_interval_excludes_zero_exactly_when_the_test_is_significant():
    for b, c in [(2, 8), (1, 8), (0, 6), (3, 30), (12, 20), (40, 60), (0, 5)]:
        cand = [True] * b + [False] * c + [True] * 400
        champ = [False] * b + [True] * c + [True] * 400
        result = mcnemar(cand, champ)
        lo, hi = result.ci95_percent
        assert (result.p_value < 0.05) == (hi < 0 or lo > 0), (b, c, result)
        assert lo <= result.difference_percent <= hi


def test_the_record_carries_the_counts_and_the_decision_inputs():
    result = mcnemar([True, True, False, True], [True, False, True, False])
    record = result.record(0.05)
    assert record["rows"] == 4 and record["candidate_only_correct"] == 2 and record["champion_only_correct"] == 1
    assert record["difference_percent"] == 25.0 and record["significance"] == 0.05
    assert record["method"].startswith("exact McNemar")
    with pytest.raises(ValueError):
        mcnemar([True], [True, False])


def macro_recall(y_true, y_pred) -> float:
    """A metric that is not a per-row mean: the mean recall over classes, in percent."""
    classes = sorted(set(y_true))
    pairs = list(zip(y_true, y_pred, strict=True))
    recalls = [sum(p == c for t, p in pairs if t == c) / sum(t == c for t in y_true) for c in classes]
    return 100.0 * sum(recalls) / len(recalls)


def test_any_metric_can_be_plugged_into_the_paired_bootstrap():
    y = [0] * 90 + [1] * 10
    champion = list(y)
    candidate = [0] * 90 + [0] * 6 + [1] * 4  # misses most of the rare class: 94% accurate, macro recall 70%
    result = paired_bootstrap(macro_recall, y, candidate, champion, "macro recall", rounds=500)
    assert result.candidate_percent == pytest.approx(70.0) and result.champion_percent == 100.0
    assert result.ci95_percent[1] < 0 and result.p_value < 0.05
    assert result.champion_only_correct == 6 and "macro recall" in result.method
    again = paired_bootstrap(macro_recall, y, candidate, champion, "macro recall", rounds=500)
    assert again == result, "seeded: the same rows give the same verdict"
    same = paired_bootstrap(macro_recall, y, champion, champion, "macro recall", rounds=200)
    assert same.p_value == 1.0 and not math.isnan(same.ci95_percent[0])
