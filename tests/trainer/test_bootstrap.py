"""The numpy paired bootstrap gives the verdict the pure-Python one gives, seeded; a number label's
paired comparison on per-row errors finds a worse candidate; dates become the right calendar parts."""

from __future__ import annotations

import numpy as np
import pytest

from modelops.core import stats
from modelops.trainer import bootstrap, regression, scoring


def three_classes(rows: int, right_a: float, right_b: float, seed: int = 1):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, rows)
    a = np.where(rng.random(rows) < right_a, truth, rng.integers(0, 3, rows))
    b = np.where(rng.random(rows) < right_b, truth, rng.integers(0, 3, rows))
    return truth, a, b


@pytest.mark.parametrize("metric", ["balanced_accuracy", "macro_f1"])
def test_the_vectorised_bootstrap_agrees_with_the_pure_python_one(metric):
    truth, a, b = three_classes(600, 0.85, 0.75)
    fast = bootstrap.class_metric(metric, truth, a, b)
    slow = stats.paired_bootstrap(lambda t, p: scoring.metric_percent(metric, t, p), truth.tolist(), a.tolist(),
                                  b.tolist(), metric)
    assert fast.candidate_percent == pytest.approx(slow.candidate_percent)
    assert fast.champion_percent == pytest.approx(slow.champion_percent)
    assert (fast.candidate_only_correct, fast.champion_only_correct) == (slow.candidate_only_correct,
                                                                         slow.champion_only_correct)
    assert fast.ci95_percent == pytest.approx(slow.ci95_percent, abs=1.5), "the same interval up to resampling noise"
    assert fast.p_value < 0.05 and slow.p_value < 0.05
    assert bootstrap.class_metric(metric, truth, a, b) == fast, "seeded: the same rows, the same verdict"


def test_a_number_labels_worse_candidate_is_a_significant_regression():
    rng = np.random.default_rng(3)
    truth = rng.normal(20, 5, 2000)
    good, bad = truth + rng.normal(0, 1.0, 2000), truth + rng.normal(0, 2.0, 2000)
    worse = regression.paired("rmse", truth, bad, good)
    assert worse.candidate_percent == pytest.approx(regression.scores(bad, truth)["rmse"])
    assert worse.difference_percent < -50 and worse.p_value < 0.01 and worse.ci95_percent[1] < 0
    same = regression.paired("mae", truth, good, good)
    assert same.difference_percent == 0 and same.p_value == 1.0
    better = regression.paired("r2", truth, good, bad)
    assert better.difference_percent > 0 and better.p_value < 0.01


def test_dates_become_year_and_calendar_cycles_in_the_graph():
    tf = pytest.importorskip("tensorflow")
    from modelops.trainer.model import dates

    text = tf.constant(["2024-07-01", "2024-07-07", "1970-01-01", "2024-12-31"])
    parts = dates.derive(text, "date", "2000-01-01", 2000.0, 100.0).numpy()
    assert parts.shape == (4, dates.width("date"))
    assert parts[0, 0] == pytest.approx(2.4) and parts[2, 0] == pytest.approx(-3.0), "year normalised"
    angle = np.arctan2(parts[:, 5], parts[:, 6]) % (2 * np.pi) * 7 / (2 * np.pi)  # day of week, 0 = Sunday
    assert np.round(angle).astype(int).tolist() == [1, 0, 4, 2], "Monday, Sunday, Thursday, Tuesday"
    month = np.arctan2(parts[:, 1], parts[:, 2]) % (2 * np.pi) * 12 / (2 * np.pi)
    assert np.round(month).astype(int).tolist() == [6, 6, 0, 11]
