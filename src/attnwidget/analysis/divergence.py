"""How far apart two runs' heads attend: the Jensen–Shannon distance between their rows (docs/analysis.md).

Reads one head of each run at a time, a block of query rows at a time, like `scores.py`.
"""

from __future__ import annotations

import math

import numpy as np

from .scores import ROW_BLOCK_VALUES

JS_DISTANCE = "js_distance"
"""The column of `AttentionWidget.compare_scores()`, and the score of a difference stack's heads in the page."""


def js_distance(a: np.ndarray, b: np.ndarray, *, has_sink: bool = False) -> float:
    """Mean over query rows of the Jensen–Shannon distance (base 2, so in [0, 1]) between row i of `a` and row i of
    `b`, two heads' maps [n_query, n_key] of the same tokens. With `has_sink`, what a row's weights leave of 1 went
    to a sink, one more key of both distributions. Each row is divided by its sum (with the sink: 1); a row with no
    weight in either map (a query that may see nothing) counts for nothing. NaN when no row counts."""
    if a.shape != b.shape:
        raise ValueError(f"the two maps differ in shape: {a.shape} and {b.shape}")
    n_query, n_key = a.shape
    step = max(1, ROW_BLOCK_VALUES // max(n_key + 1, 1))
    total, rows = 0.0, 0
    for start in range(0, n_query, step):
        p, q = (_distribution(m[start : start + step], has_sink) for m in (a, b))
        counted = (p.sum(axis=1) > 0) & (q.sum(axis=1) > 0)
        p, q = p[counted], q[counted]
        p /= p.sum(axis=1, keepdims=True)
        q /= q.sum(axis=1, keepdims=True)
        middle = (p + q) / 2
        divergence = (_relative_entropy(p, middle) + _relative_entropy(q, middle)) / 2
        # Rounding can leave a hair below 0 where the rows are equal.
        total += float(np.sqrt(np.clip(divergence, 0.0, 1.0)).sum())
        rows += int(counted.sum())
    return total / rows if rows else math.nan


def _distribution(block: np.ndarray, has_sink: bool) -> np.ndarray:
    """Rows as float64 with NaN (a fully masked row) as no weight, and the sink's share as a last key."""
    rows = np.nan_to_num(np.asarray(block, dtype=np.float64), nan=0.0)
    if not has_sink:
        return rows
    return np.concatenate([rows, np.clip(1.0 - rows.sum(axis=1, keepdims=True), 0.0, 1.0)], axis=1)


def _relative_entropy(p: np.ndarray, middle: np.ndarray) -> np.ndarray:
    """Σ_k p log2(p / m) per row, 0 where p is 0 (m > 0 wherever p > 0)."""
    terms = np.zeros_like(p)
    np.divide(p, middle, out=terms, where=p > 0)
    np.log2(terms, out=terms, where=p > 0)
    return (terms * p).sum(axis=1)
