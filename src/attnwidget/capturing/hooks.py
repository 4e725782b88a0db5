"""Architectures that compute attention inside their own modules, recorded with forward hooks.

Most architectures call a function from transformers' AttentionInterface, which `record.py`
replaces for the call. The few listed here never do, so their attention modules get forward
hooks for the duration of the capture instead; the hooks read what the module itself computed.
"""

from __future__ import annotations

import contextlib
import math
from typing import Callable, Iterator

import torch
from torch import nn


def _keep_outputs(linears: list[nn.Module], handles: list) -> dict[int, object]:
    """The latest output of each projection, by id, filled by forward hooks added to `handles`."""
    outputs: dict[int, object] = {}

    def keep(linear, args, output):
        outputs[id(linear)] = output

    handles += [linear.register_forward_hook(keep) for linear in linears]
    return outputs


def _watch_bloom(modules: list[nn.Module], recorder) -> list:
    """BLOOM adds ALiBi (beta * alibi, one slope per head) to the scaled scores, then the mask."""
    handles: list = []
    fused_of = _keep_outputs([attention.query_key_value for attention in modules], handles)
    alibi_views: dict[int, tuple] = {}  # every layer gets the same alibi: convert it once

    def record(attention, args, kwargs, output):
        query, key, _ = attention._reshape(fused_of.pop(id(attention.query_key_value)))
        alibi = kwargs["alibi"]
        if id(alibi) not in alibi_views:
            batch, heads = query.shape[:2]
            alibi_views[id(alibi)] = (alibi, attention.beta * alibi.view(batch, heads, 1, -1))
        bias = alibi_views[id(alibi)][1]
        recorder.record(attention, query, key, output[1], kwargs.get("attention_mask"), attention.inv_norm_factor, bias)

    return handles + [attention.register_forward_hook(record, with_kwargs=True) for attention in modules]


def _watch_gpt_neo(modules: list[nn.Module], recorder) -> list:
    """GPT-Neo does not scale its scores and masks with its own causal (or local window) buffer first."""
    handles: list = []
    projections = _keep_outputs([linear for a in modules for linear in (a.q_proj, a.k_proj)], handles)
    windows: dict[tuple, torch.Tensor] = {}  # one additive window per layer type and length, shared

    def record(attention, args, kwargs, output):
        query, key = (
            attention._split_heads(projections.pop(id(linear)), attention.num_heads, attention.head_dim)
            for linear in (attention.q_proj, attention.k_proj)
        )
        n_query, n_key = query.shape[-2], key.shape[-2]
        shape = (attention.attention_type, n_query, n_key)
        if shape not in windows:
            allowed = attention.bias[:, :, n_key - n_query : n_key, :n_key].to("cpu")
            windows[shape] = torch.zeros(allowed.shape).masked_fill(~allowed, -math.inf)
        recorder.record(attention, query, key, output[1], kwargs.get("attention_mask"), 1.0, windows[shape])

    return handles + [attention.register_forward_hook(record, with_kwargs=True) for attention in modules]


_WATCHERS: dict[str, Callable[[list[nn.Module], object], list]] = {
    "BloomAttention": _watch_bloom,
    "GPTNeoSelfAttention": _watch_gpt_neo,
}


@contextlib.contextmanager
def watched(model: nn.Module, recorder) -> Iterator[None]:
    """Hook the attention modules of the architectures above; remove every hook afterwards."""
    by_class: dict[str, list[nn.Module]] = {}
    for module in model.modules():
        if type(module).__name__ in _WATCHERS:
            by_class.setdefault(type(module).__name__, []).append(module)
    handles = []
    try:
        for name, modules in by_class.items():
            handles += _WATCHERS[name](modules, recorder)
        yield
    finally:
        for handle in handles:
            handle.remove()
