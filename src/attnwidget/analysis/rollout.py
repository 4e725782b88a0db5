"""Attention rollout (Abnar & Zuidema 2020): how much each input token reaches each position through all layers.

Each layer's attention averaged over its heads is mixed with the residual connection, Â = 0.5·mean_h(A) + 0.5·I,
its rows renormalised, and the layers are multiplied with the earliest applied first: R = Â_L ··· Â_2 · Â_1.
Row i of R is the share of position i's top-layer representation that comes from each input token.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np


def head_mean(heads: Iterable[np.ndarray]) -> np.ndarray:
    """mean_h(A) as float64, adding one [n, n] head at a time (a layer of 32 heads at 4096 tokens is 2 GiB)."""
    total, count = None, 0
    for head in heads:
        total = np.array(head, dtype=np.float64) if total is None else np.add(total, head, out=total)
        count += 1
    if total is None:
        raise ValueError("a layer with no heads has no mean attention")
    total /= count  # in place: at 4096 tokens every [n, n] float64 array is 128 MiB
    return total


def residual_step(mean_attention: np.ndarray) -> np.ndarray:
    """Â = 0.5·A + 0.5·I with rows renormalised to sum to 1 (rows of A may sum below 1 where a sink took some)."""
    n_query, n_key = mean_attention.shape
    if n_query != n_key:
        raise ValueError(
            f"rollout needs square attention (queries and keys the same tokens), not {n_query} x {n_key}"
        )
    step = 0.5 * np.asarray(mean_attention, dtype=np.float64)
    step[np.diag_indices(n_query)] += 0.5
    step /= step.sum(axis=1, keepdims=True)
    return step


def rollout_by_layer(mean_attentions: Iterable[np.ndarray], rollout: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """Â_1, then Â_2 · Â_1, ... up to R = Â_L ··· Â_1: the rollout through each layer in turn, from the
    head-averaged maps of layers 1..L given in the order the model ran them. All of them cost what the last does.
    `rollout`, the rollout through the layers before these, continues it (a derived rollout stack keeps some)."""
    for mean_attention in mean_attentions:
        step = residual_step(mean_attention)
        rollout = step if rollout is None else step @ rollout
        yield rollout


def attention_rollout(mean_attentions: Iterable[np.ndarray]) -> np.ndarray:
    """R = Â_L ··· Â_1 of the head-averaged maps of layers 1..L, given in the order the model ran them."""
    rollout = None
    for rollout in rollout_by_layer(mean_attentions):
        pass
    if rollout is None:
        raise ValueError("rollout needs at least one layer")
    return rollout
