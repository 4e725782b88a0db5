"""Funnel Transformer's relative attention, recorded where every query and key is a token: a model of one block
(the sequence is pooled between blocks; `refusals.py` stops the capture of pooled models with why)."""

from __future__ import annotations

import torch
from torch import nn

from .parts import arguments, asked_for_weights, keep_outputs
from .refusals import refusing


def _watch_funnel(modules: list[nn.Module], recorder) -> list:
    """Funnel scores (q + r_w)·k + (q + r_r)·R(i, j) + (q + r_s)·S(same segment), with queries and the three
    learned per-head biases scaled by 1/sqrt(head_dim). The query takes q·k; the key's share of the content bias,
    the relative-position term and the segment term (each computed by the module's own methods) make the bias."""
    def projections(attention):
        return attention.q_head, attention.k_head

    handles = asked_for_weights(modules)
    kept = keep_outputs([linear for attention in modules for linear in projections(attention)], handles)

    def record(attention, args, kwargs, output):
        given = arguments(attention, args, kwargs)
        position_embeds, token_type_mat, attention_mask, cls_mask = given["attention_inputs"]
        heads, head_dim = attention.config.n_head, attention.config.d_head
        query, key = (kept.pop(id(linear)).unflatten(-1, (heads, head_dim)) for linear in projections(attention))
        query = query * attention.scale  # [batch, n, heads, head_dim], as the module's own terms take it
        bias = torch.einsum("nd,bjnd->bnj", attention.r_w_bias * attention.scale, key)[:, :, None]
        bias = bias + attention.relative_positional_attention(position_embeds, query, key.shape[1], cls_mask)
        bias = bias + attention.relative_token_type_attention(token_type_mat, query, cls_mask)
        mask = None if attention_mask is None else attention_mask[:, None, None].bool()
        recorder.record(attention, query.transpose(1, 2), key.transpose(1, 2), output[1], mask, 1.0, bias)

    return handles + [attention.register_forward_hook(record, with_kwargs=True) for attention in modules]


_ATTENTION = "modeling_funnel.FunnelRelMultiheadAttention"
WATCHERS = {_ATTENTION: refusing(_ATTENTION, _watch_funnel)}
