"""Head scores: numbers that say what one head's map does, computed one head at a time (docs/analysis.md).

Everything here reads a [n_query, n_key] map of one head, a block of query rows at a time, so scoring a
4096-token head holds the head and a few blocks of temporaries, never a layer.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..capturing.progress import LayerProgress

ROW_BLOCK_VALUES = 2**20
"""Attention values read at once: 256 query rows of a 4096-token head (8 MiB of float64 temporaries)."""
SINK_THRESHOLD = 0.3
"""A query counts towards `first_token_share` when it gives the first token more than this."""

SCORES = (
    "entropy",
    "entropy_normalised",
    "previous_token",
    "current_token",
    "first_token",
    "first_token_share",
    "offset",
    "offset_share",
)
"""The columns of `Capture.head_scores`, in order, after stack, layer and head."""

@dataclass(frozen=True)
class ScoreInfo:
    """How the page names a score (the model view's atlas, `meta.head_scores`)."""

    label: str
    about: str
    """What it measures, in a few words; docs/analysis.md defines it exactly."""
    bounds: tuple[float, float] | None = (0.0, 1.0)
    """Fixed bounds, so colours mean the same in every model; None: scaled to the stack's own values."""


SCORE_INFO = {
    "entropy": ScoreInfo("entropy", "mean over queries of −Σ p ln p, in nats", None),
    "entropy_normalised": ScoreInfo("spread", "entropy over its most, ln(keys the query may see): 1 is uniform"),
    "previous_token": ScoreInfo("previous token", "mean weight on the token just before the query"),
    "current_token": ScoreInfo("current token", "mean weight on the query's own token"),
    "first_token": ScoreInfo("first token", "mean weight on the first token, a sink"),
    "first_token_share": ScoreInfo("first-token share", f"share of queries giving the first token over {SINK_THRESHOLD}"),
    "offset": ScoreInfo("offset", "the relative position (key − query) with the most weight", None),
    "offset_share": ScoreInfo("offset share", "mean weight at that offset"),
    "induction": ScoreInfo("induction", "on a repeated random sequence, mean weight on the token after the earlier copy"),
    "duplicate_token": ScoreInfo("duplicate token", "on a repeated random sequence, mean weight on the earlier copy"),
    "js_distance": ScoreInfo(
        "JS distance", "of two compared runs: mean over queries of the Jensen–Shannon distance of their rows (base 2)"
    ),
}
"""Every score the page can show, by its column name."""

SAME_SIDE_SCORES = ("previous_token", "current_token", "offset", "offset_share")
"""Scores that compare a query's position with a key's: undefined (NaN) where queries and keys are different
sequences (cross-attention)."""


@dataclass
class _Sums:
    """Running sums over the counted query rows of one head."""

    rows: int = 0
    entropy: float = 0.0
    normalised: float = 0.0
    normalised_rows: int = 0
    previous: float = 0.0
    previous_rows: int = 0
    current: float = 0.0
    first: float = 0.0
    first_over: int = 0


def head_scores(
    attention: np.ndarray, *, same_side: bool, bias: np.ndarray | None = None, has_sink: bool = False
) -> dict[str, float]:
    """The scores of one head's map `attention` [n_query, n_key] (see docs/analysis.md for each definition).

    - `same_side`: queries and keys are the same tokens (self, encoder and decoder stacks), so query i and key i
      are one position; False for cross-attention, whose position scores are NaN.
    - `bias`: the head's additive mask broadcastable to [n_query, n_key] (-inf where a query may not look), or
      None; a key the bias leaves open counts as visible even when its weight rounded to 0.
    - `has_sink`: each row's weight short of 1 went to a sink, one more key that is no token: it is one more
      outcome of the row's distribution (entropy) and one more key the query may see.
    A row with no weight at all (a query that may see nothing) counts for nothing.
    """
    n_query, n_key = attention.shape
    sums = _Sums()
    diagonals = np.zeros(n_query + n_key - 1)  # index d + n_query - 1 holds the weight on key i + d
    step = max(1, ROW_BLOCK_VALUES // max(n_key, 1))
    for start in range(0, n_query, step):
        stop = min(start + step, n_query)
        # float32 is exact enough for each term; every sum below is taken in float64.
        block = np.asarray(attention[start:stop], dtype=np.float32)
        _add_block(sums, diagonals, block, start, _bias_rows(bias, start, stop), has_sink, same_side)
    return _finished(sums, diagonals, n_query, same_side)


def _bias_rows(bias: np.ndarray | None, start: int, stop: int) -> np.ndarray | None:
    if bias is None:
        return None
    bias = np.asarray(bias)
    return bias if bias.ndim < 2 or bias.shape[0] == 1 else bias[start:stop]


def _add_block(
    sums: _Sums, diagonals: np.ndarray, block: np.ndarray, start: int, bias: np.ndarray | None, has_sink: bool,
    same_side: bool,
) -> None:  # fmt: skip
    rows = np.arange(start, start + block.shape[0])
    token_weight = block.sum(axis=1, dtype=np.float64)
    sink = np.clip(1.0 - token_weight, 0.0, None) if has_sink else np.zeros_like(token_weight)
    counted = token_weight + sink > 0
    if not counted.any():
        return
    visible = block > 0
    if bias is not None:
        visible |= np.isfinite(np.broadcast_to(bias, block.shape))
    may_see = visible.sum(axis=1) + (1 if has_sink else 0)
    entropy = -_plogp(block).sum(axis=1, dtype=np.float64) - _plogp(sink)
    normalisable = counted & (may_see >= 2)  # one visible key: no choice, nothing to normalise by
    sums.rows += int(counted.sum())
    sums.entropy += float(entropy[counted].sum())
    sums.normalised += float((entropy[normalisable] / np.log(may_see[normalisable])).sum())
    sums.normalised_rows += int(normalisable.sum())
    sums.first += float(block[counted, 0].sum(dtype=np.float64))
    sums.first_over += int((block[counted, 0] > SINK_THRESHOLD).sum())
    if not same_side:
        return
    local = np.arange(block.shape[0])
    sums.current += float(block[local, rows][counted].sum(dtype=np.float64))
    after_first = counted & (rows >= 1)
    sums.previous += float(block[local[after_first], rows[after_first] - 1].sum(dtype=np.float64))
    sums.previous_rows += int(after_first.sum())
    # The weight of key j from query i goes to offset j - i; uncounted rows hold no weight.
    n_query, n_key = diagonals.shape[0] - block.shape[1] + 1, block.shape[1]
    offsets = np.arange(n_key)[None, :] - rows[:, None] + (n_query - 1)
    diagonals += np.bincount(offsets.ravel(), weights=block.ravel(), minlength=diagonals.shape[0])


def _plogp(p: np.ndarray) -> np.ndarray:
    """p · ln p, 0 where p is 0 (whose logarithm is never taken: half of a causal head)."""
    logs = np.zeros_like(p)
    np.log(p, out=logs, where=p > 0)
    return logs.__imul__(p)


def _finished(sums: _Sums, diagonals: np.ndarray, n_query: int, same_side: bool) -> dict[str, float]:
    nan = math.nan
    rows = sums.rows
    scores = {
        "entropy": sums.entropy / rows if rows else nan,
        "entropy_normalised": sums.normalised / sums.normalised_rows if sums.normalised_rows else nan,
        "previous_token": sums.previous / sums.previous_rows if same_side and sums.previous_rows else nan,
        "current_token": sums.current / rows if same_side and rows else nan,
        "first_token": sums.first / rows if rows else nan,
        "first_token_share": sums.first_over / rows if rows else nan,
        "offset": nan,
        "offset_share": nan,
    }
    if same_side and rows:
        best = int(np.argmax(diagonals))  # ties: the most negative offset, the furthest back
        scores["offset"] = best - (n_query - 1)
        scores["offset_share"] = float(diagonals[best]) / rows
    return scores


def capture_score_rows(
    capture, stacks: Sequence[str], layers: Sequence[int] | None = None, progress: bool = True
) -> list[dict[str, object]]:
    """One row of scores per (stack, layer, head) of a `Capture` (`layers`: only those indices of each stack), one
    head's map in memory at a time. A capture long enough to wait for shows a bar over its layers, as its capture
    did (`progress=False`: never)."""
    chosen = {stack: range(capture.num_layers(stack)) if layers is None else layers for stack in stacks}
    bar = LayerProgress(sum(len(indices) for indices in chosen.values()), progress, "scoring heads")
    rows = []
    with contextlib.closing(bar):
        for stack in stacks:
            record = capture.stack(stack)
            same_side = record.query_side == record.key_side
            for layer in chosen[stack]:
                bias, sinks = capture.bias(layer, stack), capture.sinks(layer, stack)
                for head in range(record.num_heads):
                    head_bias = None if bias is None else bias[head if bias.shape[0] > 1 else 0]
                    attention = capture.head_attention(layer, head, stack)
                    scores = head_scores(attention, same_side=same_side, bias=head_bias, has_sink=sinks is not None)
                    rows.append({"stack": stack, "layer": layer, "head": head, **scores})
                bar(int(np.prod(record.layers[layer].shape)))
    return rows


def scores_frame(rows: list[dict[str, object]], columns: Sequence[str] = SCORES):
    """A pandas DataFrame of score rows: stack, layer, head, then `columns`. pandas is imported only here, so
    importing attnwidget stays light."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=["stack", "layer", "head", *columns])
    if "offset" in frame:
        frame["offset"] = frame["offset"].astype("Int64")  # a whole number of positions; <NA> where undefined
    return frame
