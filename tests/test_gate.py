"""The gate's rules, as a pure function."""

from modelops.config import GateConfig
from modelops.gate import decide

GATE = GateConfig(min_accuracy_percent=97.0, max_regression_percent=1.0, min_eval_rows=100)


def test_first_model_is_gated_by_the_floor_alone():
    assert decide(GATE, 97.0, None, 400).promote
    rejected = decide(GATE, 96.99, None, 400)
    assert not rejected.promote
    assert "96.99% < 97.00%" in rejected.reasons[0]


def test_regression_against_the_champion_beyond_the_allowance_is_rejected():
    assert decide(GATE, 98.0, 99.0, 400).promote  # exactly the allowed regression
    decision = decide(GATE, 97.9, 99.0, 400)
    assert not decision.promote
    assert any("regression" in r and "champion 99.00%" in r for r in decision.reasons)


def test_too_few_eval_rows_cannot_promote_even_a_perfect_model():
    decision = decide(GATE, 100.0, None, 99)
    assert not decision.promote
    assert "only 99 eval rows" in decision.reasons[0]


def test_a_failed_reload_check_rejects_and_every_failed_rule_is_listed():
    decision = decide(GATE, 50.0, 99.0, 10, sanity_error="outputs are not all finite")
    assert not decision.promote
    assert len(decision.reasons) == 4
    assert decision.threshold_percent == 97.0
