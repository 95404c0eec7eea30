"""The paired statistics against values worked out by hand (and in published tables)."""

import math

import pytest

from modelops.core.stats import adjusted_wald, mcnemar, paired_bootstrap, sign_test_p


def test_exact_mcnemar_p_is_twice_the_smaller_binomial_tail():
    assert sign_test_p(2, 10) == pytest.approx(2 * (1 + 10 + 45) / 1024)
    assert sign_test_p(8, 10) == sign_test_p(2, 10), "two-sided: the direction does not matter"
    assert sign_test_p(5, 10) == 1.0
    assert sign_test_p(0, 0) == 1.0, "no disagreements: no evidence either way"
    assert sign_test_p(0, 6) == pytest.approx(2 / 64)


def test_large_counts_stay_exact_and_finite():
    p = sign_test_p(2400, 5000)
    assert 0.004 < p < 0.006  # normal approximation: z = 2.83 -> 0.0047
    assert 0 < sign_test_p(4, 289) < 1e-70, "far beyond float's 2**-1074 steps, still not rounded to 0"


def test_the_interval_is_bonett_prices_adjusted_wald():
    """(b+1)/(n+2) and (c+1)/(n+2): 3/482 and 9/482, centre -1.245, half width 1.96 * 0.716 points."""
    lo, hi = adjusted_wald(2, 8, 480)
    assert (round(lo, 2), round(hi, 2)) == (-2.65, 0.16)
    lo, hi = adjusted_wald(0, 0, 480)
    assert lo == -hi and 0.5 < hi < 0.6, "no disagreement on 480 rows still leaves half a point of doubt"
    assert adjusted_wald(0, 100, 100)[0] == -100.0, "never beyond -100 points"


def test_the_interval_agrees_with_the_exact_test_away_from_the_margin():
    for b, c in [(2, 8), (1, 8), (0, 6), (3, 30), (12, 20), (0, 5), (0, 2), (2, 12), (100, 200)]:
        cand = [True] * b + [False] * c + [True] * 400
        champ = [False] * b + [True] * c + [True] * 400
        result = mcnemar(cand, champ)
        lo, hi = result.ci95_percent
        assert (result.p_value < 0.05) == (hi < 0 or lo > 0), (b, c, result)
        assert lo < result.difference_percent < hi


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
