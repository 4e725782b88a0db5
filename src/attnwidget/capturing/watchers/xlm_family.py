"""XLM's multi-head attention, kept word for word by Flaubert: computed in the module itself, with its own mask."""

from __future__ import annotations

import math

from torch import nn

from .parts import watch_asked_with_projections


def _watch_xlm_style(modules: list[nn.Module], recorder) -> list:
    """XLM and Flaubert divide their queries by sqrt(head_dim) before the product (the scaling here), then fill
    the scores the mask excludes. Their mask is 1 where a key may be attended: [batch, keys], or
    [batch, queries, keys] when the model is causal."""

    def terms(attention, given, query, key):
        mask = given["mask"]
        attend = (mask[:, None] if mask.dim() == 3 else mask[:, None, None]) != 0
        return query, key, attend, 1 / math.sqrt(attention.head_dim), None

    return watch_asked_with_projections(modules, recorder, lambda attention: (attention.q_lin, attention.k_lin), terms)


WATCHERS = {
    "modeling_xlm.MultiHeadAttention": _watch_xlm_style,
    "modeling_flaubert.MultiHeadAttention": _watch_xlm_style,
}
