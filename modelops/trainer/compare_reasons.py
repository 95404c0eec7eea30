"""``compare A B``'s reasons: the features whose share of the importance moved most between the two
versions, as each recorded it in ``metrics.json`` at training (``explanations.share``,
docs/explain.md). Read from the records, not asked of serving: the shares come from every eval row
of each version's own training, which a comparison's few hundred rows would only approximate."""

from __future__ import annotations

from modelops.core import importance
from modelops.core.store import ModelStore

SHOWN = 3  # features listed, the largest moves first


def moved(store: ModelStore, versions: tuple[int, int], shown: int = SHOWN) -> dict:
    """``{"unrecorded": [versions without importance], "moved": [{"feature", "a", "b", "shift"}]}``:
    each feature's share in A and in B and ``shift`` = A's minus B's, the ``shown`` largest moves
    (none that did not move); ``moved`` is empty when either version recorded no importance."""
    found = [importance.shares(store.metrics(v) or store.metrics(v, retired=True)) for v in versions]
    unrecorded = [v for v, shares in zip(versions, found, strict=True) if shares is None]
    a, b = found
    if a is None or b is None:
        return {"unrecorded": unrecorded, "moved": []}
    shifts = [(name, shift) for name, shift in importance.shifts(a, b) if shift != 0.0][:shown]
    return {"unrecorded": [], "moved": [{"feature": name, "a": a.get(name, 0.0), "b": b.get(name, 0.0),
                                         "shift": shift} for name, shift in shifts]}


def lines(found: dict | None, names: list[str]) -> list[str]:
    """The lines ``compare`` prints for ``moved``'s result; ``names``: ``["vA", "vB"]``."""
    if not found:
        return []
    if found["unrecorded"]:
        return [f"  importance        not recorded for {', '.join(f'v{v}' for v in found['unrecorded'])}"]
    if not found["moved"]:
        return ["  importance        the same share per feature"]
    new = {m["feature"]: m["a"] for m in found["moved"]}
    old = {m["feature"]: m["b"] for m in found["moved"]}
    return [f"  importance moved most ({names[1]} -> {names[0]}):",
            *(f"    {importance.shift_line(m['feature'], m['shift'], new, old)}" for m in found["moved"])]
