"""The gate's rules, as a pure function over the paired comparison with the champion."""

import dataclasses

from modelops.core.config import GateConfig, SliceConfig
from modelops.core.stats import mcnemar
from modelops.trainer import slices
from modelops.trainer.gate import decide

GATE = GateConfig(min_accuracy_percent=97.0, max_regression_percent=1.0, min_eval_rows=100)
RIGHT = [True]  # labels of rows where a prediction True is right (class 1) and False wrong


def paired(rows: int, both_wrong: int, candidate_only: int, champion_only: int):
    """Candidate and champion scored on ``rows`` rows: the first ``both_wrong`` wrong for both, then
    rows only the candidate gets right, then rows only the champion gets right, the rest right for both."""
    cand = [False] * both_wrong + [True] * candidate_only + [False] * champion_only
    champ = [False] * both_wrong + [False] * candidate_only + [True] * champion_only
    rest = rows - len(cand)
    return cand + [True] * rest, champ + [True] * rest


def test_first_model_is_gated_by_the_floor_alone():
    assert decide(GATE, 97.0, None, 400).promote
    rejected = decide(GATE, 96.99, None, 400)
    assert not rejected.promote
    assert "96.99% < 97.00%" in rejected.reasons[0]


def test_a_noisy_candidate_the_fixed_margin_rejected_now_promotes():
    """The issue's case: ~480 rows, 97.50% vs 98.75%: 1.25 points below, but 2 against 8
    disagreements is what two equally good models produce one time in nine."""
    comparison = mcnemar(*paired(480, 4, 2, 8))
    assert (comparison.candidate_percent, comparison.champion_percent) == (97.5, 98.75)
    old_rule_rejects = comparison.candidate_percent < comparison.champion_percent - GATE.max_regression_percent
    assert old_rule_rejects
    decision = decide(GATE, comparison.candidate_percent, comparison, 480)
    assert decision.promote, decision.reasons
    assert comparison.p_value > GATE.significance
    lo, hi = comparison.ci95_percent
    assert lo < 0 < hi, "the interval includes no difference at all"
    assert any("no significant regression" in r and "p=0.109" in r for r in decision.reasons)


def test_a_genuinely_worse_candidate_is_rejected_with_the_evidence():
    comparison = mcnemar(*paired(480, 4, 3, 30))
    decision = decide(dataclasses.replace(GATE, min_accuracy_percent=50.0), comparison.candidate_percent,
                      comparison, 480)
    assert not decision.promote
    assert comparison.p_value < 0.05 and comparison.ci95_percent[1] < 0
    [reason] = decision.reasons
    assert "significant regression" in reason and "only the candidate right on 3, only the champion on 30 rows" in reason


def test_a_significant_but_immaterial_regression_promotes():
    """Thousands of rows make half a point significant; it is still within gate.max_regression_percent."""
    comparison = mcnemar(*paired(20_000, 0, 100, 200))
    assert comparison.p_value < 0.001 and -comparison.difference_percent == 0.5
    assert decide(dataclasses.replace(GATE, min_accuracy_percent=90.0), 99.0, comparison, 20_000).promote


def test_require_improvement_promotes_only_a_significantly_better_candidate():
    gate = dataclasses.replace(GATE, require_improvement=True)
    better = mcnemar(*paired(480, 0, 20, 2))
    same = mcnemar(*paired(480, 0, 5, 4))
    assert decide(gate, better.candidate_percent, better, 480).promote
    decision = decide(gate, same.candidate_percent, same, 480)
    assert not decision.promote
    assert "no significant improvement" in decision.reasons[0] and "gate.require_improvement" in decision.reasons[0]


def test_the_significance_level_is_the_users():
    comparison = mcnemar(*paired(480, 0, 2, 12))  # p = 0.013
    assert not decide(GATE, 97.5, comparison, 480).promote
    assert decide(dataclasses.replace(GATE, significance=0.01), 97.5, comparison, 480).promote


def test_a_slice_regression_the_overall_number_hides_rejects_naming_the_slice():
    """The candidate loses 30 rows with x1 < 0 and wins 30 elsewhere: overall equal, one slice much worse."""
    rows = 600
    x1 = [-1.0] * 200 + [1.0] * 400
    cand = [False] * 30 + [True] * 170 + [True] * 30 + [False] * 0 + [True] * 370
    champ = [True] * 200 + [False] * 30 + [True] * 370
    overall = mcnemar(cand, champ)
    assert overall.difference_percent == 0
    gate = dataclasses.replace(GATE, min_accuracy_percent=90.0, slices=(SliceConfig("x1", (0.0,)),))
    found = slices.score(gate, {"x1": x1}, RIGHT * len(cand), cand, champ)
    assert [(s.name, s.rows, s.verdict) for s in found] == [("x1 < 0", 200, "regression"), ("x1 >= 0", 400, "ok")]
    assert sum(s.rows for s in found) == rows
    decision = decide(gate, overall.candidate_percent, overall, rows, slices=found)
    assert not decision.promote
    [reason] = decision.reasons
    assert "slice x1 < 0 (200 rows)" in reason and "85.00% vs champion 100.00%" in reason
    assert decide(gate, overall.candidate_percent, overall, rows).promote, "without slices it would promote"


def test_a_slice_smaller_than_min_slice_rows_is_reported_not_judged():
    x1 = [-1.0] * 20 + [1.0] * 460
    cand = [False] * 6 + [True] * 474  # loses 6 of the 20 rows with x1 < 0 (p=0.03 within them) ...
    champ = [True] * 20 + [False] * 4 + [True] * 456  # ... and wins 4 elsewhere: overall p=0.75
    gate = dataclasses.replace(GATE, min_accuracy_percent=90.0, slices=(SliceConfig("x1", (0.0,)),))
    found = slices.score(gate, {"x1": x1}, RIGHT * len(cand), cand, champ)
    assert found[0].rows == 20 and found[0].verdict.startswith("not judged")
    assert found[0].record()["candidate_percent"] == 70.0 and found[0].paired_test.p_value < 0.05
    overall = mcnemar(cand, champ)
    assert decide(gate, overall.candidate_percent, overall, 480, slices=found).promote


def test_category_slices_each_value_is_a_slice_and_the_rows_add_up():
    columns = {"colour": ["red", "blue", "red", "green", "blue", "red"]}
    groups = slices.groups(SliceConfig("colour"), columns)
    assert groups == [("colour = blue", [1, 4]), ("colour = green", [3]), ("colour = red", [0, 2, 5])]
    ranges = slices.groups(SliceConfig("x", (0.0, 1.5)), {"x": [-2.0, 0.0, 1.0, 1.5, 9.0]})
    assert ranges == [("x < 0", [0]), ("0 <= x < 1.5", [1, 2]), ("x >= 1.5", [3, 4])]


def test_rows_missing_the_value_form_their_own_slice():
    found = slices.groups(SliceConfig("x", (0.0,)), {"x": [1.0, float("nan"), -1.0]})
    assert found == [("x < 0", [2]), ("x >= 0", [0]), ("x missing", [1])]
    assert slices.groups(SliceConfig("c"), {"c": ["a", "", "a"]}) == [("c = a", [0, 2]), ("c missing", [1])]


def test_slices_follow_gate_metric_with_a_paired_bootstrap():
    """A three-class slice judged by macro F1: the candidate never answers class 2 there."""
    truth = [0, 1, 2] * 40 + [0, 1, 2] * 40
    region = [-1.0] * 120 + [1.0] * 120
    champ = list(truth)
    cand = [0, 1, 0] * 40 + list(truth[120:])
    gate = dataclasses.replace(GATE, metric="macro_f1", min_accuracy_percent=50.0, slices=(SliceConfig("r", (0.0,)),))
    low, high = slices.score(gate, {"r": region}, truth, cand, champ)
    assert low.verdict == "regression" and high.verdict == "ok"
    assert "paired bootstrap of macro_f1" in low.paired_test.method and low.paired_test.p_value < 0.05
    assert low.paired_test.champion_percent == 100.0 and low.candidate_percent < 60.0
    decision = decide(gate, 80.0, high.paired_test, 240, slices=[low, high])
    assert not decision.promote and "slice r < 0 (120 rows): macro_f1" in decision.reasons[0]


def test_without_a_champion_slices_are_reported_for_the_candidate():
    gate = dataclasses.replace(GATE, slices=(SliceConfig("x1", (0.0,)),))
    [low, high] = slices.score(gate, {"x1": [-1.0, 1.0]}, RIGHT * 2, [True, False], None)
    assert (low.verdict, low.candidate_percent, high.candidate_percent) == ("no champion", 100.0, 0.0)
    assert low.record()["champion_percent"] is None


def test_too_few_eval_rows_cannot_promote_even_a_perfect_model():
    decision = decide(GATE, 100.0, None, 99)
    assert not decision.promote
    assert "only 99 eval rows" in decision.reasons[0]


def test_a_failed_reload_check_rejects_and_every_failed_rule_is_listed():
    comparison = mcnemar(*paired(10, 0, 0, 5))
    decision = decide(dataclasses.replace(GATE, significance=0.1), 50.0, comparison, 10,
                      sanity_error="outputs are not all finite")
    assert not decision.promote
    assert len(decision.reasons) == 4
    assert decision.threshold_percent == 97.0
