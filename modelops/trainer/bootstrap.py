"""The paired bootstrap at table size: numpy resampling, a chunk of resamples at a time.

``core.stats.paired_bootstrap`` resamples in pure Python (any metric, any caller); at 20,000 eval
rows and a few slices that is tens of seconds per comparison. Here the same test runs on index
matrices: each chunk of resamples is one ``[rounds, n]`` draw, and a resample's score comes from
its confusion table (one ``bincount``) or from the mean of per-row errors. The draw is seeded
(``numpy.random.default_rng(seed)``), so the same rows give the same verdict every run. Same
interval and p-value rules as ``core.stats`` (percentile interval, twice the far-side share).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from modelops.core import stats

CHUNK_ELEMENTS = 2_000_000  # indices drawn at once: bounds memory at ~16 MB whatever the row count


def resample_scores(n: int, score: Callable[[np.ndarray], np.ndarray], rounds: int, seed: int) -> np.ndarray:
    """``score(indices [r, n]) -> [r]`` over ``rounds`` seeded resamples of ``n`` rows."""
    rng = np.random.default_rng(seed)
    per_chunk = max(1, CHUNK_ELEMENTS // max(n, 1))
    out = []
    for start in range(0, rounds, per_chunk):
        out.append(score(rng.integers(0, n, size=(min(per_chunk, rounds - start), n), dtype=np.int32)))
    return np.concatenate(out)


def compare(name: str, rows: int, candidate: float, champion: float, diffs: np.ndarray,
            hits: tuple[int, int] = (0, 0), higher_is_better: bool = True) -> stats.Paired:
    """A Paired record from the resampled differences (candidate - champion, in the metric's unit);
    for an error (``higher_is_better`` False) the difference is turned so that positive is better."""
    rounds = len(diffs)
    diffs = np.sort(diffs)
    alpha = (1.0 - stats.CONFIDENCE) / 2
    below, above = float(np.mean(diffs <= 0)), float(np.mean(diffs >= 0))
    sign = 1.0 if higher_is_better else -1.0
    lo, hi = float(diffs[int(alpha * rounds)]), float(diffs[min(rounds - 1, int((1 - alpha) * rounds))])
    return stats.Paired(
        method=f"paired bootstrap of {name} ({rounds} resamples, two-sided)", rows=rows,
        candidate_only_correct=hits[0], champion_only_correct=hits[1],
        candidate_percent=candidate, champion_percent=champion, difference_percent=sign * (candidate - champion),
        ci95_percent=(lo, hi) if higher_is_better else (-hi, -lo), p_value=min(1.0, 2 * min(below, above)),
    )


def batched_scores(tables: np.ndarray, metric: str) -> np.ndarray:
    """``scoring.scores_percent`` of ``[r, K, K]`` confusion tables at once: ``[r]`` percents."""
    true, predicted = tables.sum(axis=2), tables.sum(axis=1)
    hits = np.diagonal(tables, axis1=1, axis2=2)
    seen = true > 0
    if metric == "accuracy":
        return hits.sum(axis=1) / np.maximum(true.sum(axis=1), 1) * 100.0
    recall = np.divide(hits, true, out=np.zeros(hits.shape), where=seen)
    if metric == "balanced_accuracy":
        per_class = recall
    else:
        precision = np.divide(hits, predicted, out=np.zeros(hits.shape), where=predicted > 0)
        total = precision + recall
        per_class = np.divide(2 * precision * recall, total, out=np.zeros(hits.shape), where=total > 0)
    counted = seen.sum(axis=1)
    return np.where(counted > 0, (per_class * seen).sum(axis=1) / np.maximum(counted, 1), 0.0) * 100.0


def class_metric(metric: str, truth: np.ndarray, candidate: np.ndarray, champion: np.ndarray,
                 rounds: int = stats.BOOTSTRAP_ROUNDS, seed: int = 0) -> stats.Paired:
    """The paired bootstrap of a class metric (balanced accuracy, macro F1) from class indexes.

    A class metric depends on the rows only through the counts of (true, candidate, champion)
    triples, and resampling ``n`` rows with replacement draws those counts from a multinomial with
    the triples' shares: one draw of ``[rounds, K**3]`` counts is the whole bootstrap, exactly.
    """
    truth, candidate, champion = (np.asarray(a, dtype=np.int64).reshape(-1) for a in (truth, candidate, champion))
    n = len(truth)
    if not n or len(candidate) != n or len(champion) != n:
        raise ValueError("both models must be scored on the same, non-empty rows")
    k = int(max(truth.max(), candidate.max(), champion.max())) + 1
    triples = np.bincount((truth * k + candidate) * k + champion, minlength=k**3)
    draws = np.random.default_rng(seed).multinomial(n, triples / n, size=rounds).reshape(rounds, k, k, k)
    whole = triples.reshape(1, k, k, k)

    def score(counts: np.ndarray, model: int) -> np.ndarray:  # [r, true, cand, champ] -> [r] percents
        return batched_scores(counts.sum(axis=3 if model == 0 else 2), metric)

    diffs = score(draws, 0) - score(draws, 1)
    right_a, right_b = candidate == truth, champion == truth
    hits = (int(np.sum(right_a & ~right_b)), int(np.sum(right_b & ~right_a)))
    return compare(metric, n, float(score(whole, 0)[0]), float(score(whole, 1)[0]), diffs, hits)
