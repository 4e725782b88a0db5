"""Architectures that compute attention inside their own modules, recorded with forward hooks.

Most architectures call a function from transformers' AttentionInterface, which `_recording.py`
replaces for the call. The few listed here never do, so their attention modules get forward
hooks for the duration of the capture instead; the hooks read what the module itself computed.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

from torch import nn


def _watch_bloom(modules: list[nn.Module], recorder) -> list:
    """BLOOM adds ALiBi (beta * alibi, one slope per head) to the scaled scores, then the mask."""
    fused_of: dict[int, object] = {}
    alibi_views: dict[int, tuple] = {}  # every layer gets the same alibi: convert it once

    def keep_fused(linear, args, output):
        fused_of[id(linear)] = output

    def record(attention, args, kwargs, output):
        query, key, _ = attention._reshape(fused_of.pop(id(attention.query_key_value)))
        alibi = kwargs["alibi"]
        if id(alibi) not in alibi_views:
            batch, heads = query.shape[:2]
            alibi_views[id(alibi)] = (alibi, attention.beta * alibi.view(batch, heads, 1, -1))
        bias = alibi_views[id(alibi)][1]
        recorder.record(attention, query, key, output[1], kwargs.get("attention_mask"), attention.inv_norm_factor, bias)

    handles = []
    for attention in modules:
        handles.append(attention.query_key_value.register_forward_hook(keep_fused))
        handles.append(attention.register_forward_hook(record, with_kwargs=True))
    return handles


_WATCHERS: dict[str, Callable[[list[nn.Module], object], list]] = {"BloomAttention": _watch_bloom}


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
