"""``compare A B``'s reasons from each version's recorded importance: the largest moves first,
what a version exported before explanations says, and how it reads in the command's output."""

from __future__ import annotations

import json

from modelops.core import importance
from modelops.core.store import ModelStore
from modelops.trainer import compare_reasons


def _store(tmp_path, **recorded) -> ModelStore:
    """A models dir whose versions hold only a metrics.json (``v3=None``: one without importance)."""
    for name, mean_abs in recorded.items():
        folder = tmp_path / name[1:]
        folder.mkdir()
        metrics = {"version": int(name[1:])}
        if mean_abs is not None:
            metrics["explanations"] = importance.record(mean_abs)
        (folder / "metrics.json").write_text(json.dumps(metrics))
    return ModelStore(tmp_path)


def test_the_features_whose_share_moved_most_come_first(tmp_path):
    store = _store(tmp_path, v1={"amount": 0.1, "age": 0.6, "city": 0.3, "noise": 0.0},
                   v2={"amount": 0.6, "age": 0.2, "city": 0.2, "noise": 0.0})
    found = compare_reasons.moved(store, (2, 1))
    assert found == {"unrecorded": [], "moved": [{"feature": "amount", "a": 0.6, "b": 0.1, "shift": 0.5},
                                                 {"feature": "age", "a": 0.2, "b": 0.6, "shift": -0.4},
                                                 {"feature": "city", "a": 0.2, "b": 0.3, "shift": -0.1}]}
    assert compare_reasons.lines(found, ["v2", "v1"]) == [
        "  importance moved most (v1 -> v2):",
        "    'amount' 10% -> 60% of the importance (+50%)",
        "    'age' 60% -> 20% of the importance (-40%)",
        "    'city' 30% -> 20% of the importance (-10%)",
    ]
    assert len(compare_reasons.moved(store, (2, 1), shown=1)["moved"]) == 1
    same = compare_reasons.moved(store, (1, 1))
    assert compare_reasons.lines(same, ["v1", "v1"]) == ["  importance        the same share per feature"]


def test_a_version_without_recorded_importance_is_named(tmp_path):
    store = _store(tmp_path, v1={"x1": 0.5, "x2": 0.5}, v3=None)
    found = compare_reasons.moved(store, (3, 1))
    assert found == {"unrecorded": [3], "moved": []}
    assert compare_reasons.lines(found, ["v3", "v1"]) == ["  importance        not recorded for v3"]
    assert compare_reasons.moved(store, (3, 9))["unrecorded"] == [3, 9]  # v9: no such version
