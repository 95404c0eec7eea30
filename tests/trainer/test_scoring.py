"""gate.metric: an imbalanced table is gated on what matters, and the confusion table counts rows."""

import numpy as np
import pytest

from modelops.core.config import GateConfig
from modelops.trainer import scoring
from modelops.trainer.gate import decide


def test_balanced_accuracy_and_macro_f1_do_not_reward_answering_the_biggest_class():
    labels = np.array([0] * 90 + [1] * 5 + [2] * 5, dtype=np.float32)
    always_zero = np.tile([0.9, 0.05, 0.05], (100, 1))
    table = scoring.confusion(scoring.predicted_classes(always_zero), labels, 3)
    assert table.tolist() == [[90, 0, 0], [5, 0, 0], [5, 0, 0]]
    scores = scoring.scores_percent(table)
    assert scores["accuracy"] == pytest.approx(90.0)
    assert scores["balanced_accuracy"] == pytest.approx(100 / 3)
    assert scores["macro_f1"] == pytest.approx(100 * (2 * 0.9 / 1.9) / 3)
    strict = GateConfig(min_accuracy_percent=80.0, metric="balanced_accuracy")
    decision = decide(strict, scores["balanced_accuracy"], None, 100)
    assert not decision.promote and "balanced_accuracy 33.33% < 80.00%" in decision.reasons[0]


def test_a_perfect_model_scores_100_on_every_metric():
    labels = np.array([0, 1, 2, 2], dtype=np.float32)
    table = scoring.confusion(labels, labels, 3)
    assert scoring.scores_percent(table) == {"accuracy": 100.0, "balanced_accuracy": 100.0, "macro_f1": 100.0}
    record = scoring.confusion_record(table, ("a", "b", "c"))
    assert record["classes"] == ["a", "b", "c"] and record["counts"] == [[1, 0, 0], [0, 1, 0], [0, 0, 2]]


def test_one_probability_column_is_the_second_class_from_one_half():
    assert scoring.predicted_classes(np.array([[0.5], [0.49]])).tolist() == [1.0, 0.0]


def test_the_paired_comparison_follows_the_metric_and_counts_k_class_rows_right_by_class():
    truth = np.array([0, 1, 2, 2, 1, 0] * 20, dtype=np.float32)
    champion = truth.copy()
    candidate = truth.copy()
    candidate[:12] = (candidate[:12] + 1) % 3  # wrong on the first 12 rows, right elsewhere
    by_accuracy = scoring.paired("accuracy", truth, candidate, champion)
    assert by_accuracy.method.startswith("exact McNemar")
    assert (by_accuracy.candidate_only_correct, by_accuracy.champion_only_correct) == (0, 12)
    assert by_accuracy.candidate_percent == 90.0 and by_accuracy.p_value < 0.001
    by_balanced = scoring.paired("balanced_accuracy", truth, candidate, champion)
    assert "balanced_accuracy" in by_balanced.method and by_balanced.champion_percent == 100.0
    assert by_balanced.candidate_percent == scoring.metric_percent("balanced_accuracy", truth, candidate)
    assert by_balanced.ci95_percent[1] < 0 and by_balanced.p_value < 0.05
