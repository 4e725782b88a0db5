"""Architectures that compute attention inside their own modules, recorded with forward hooks.

Most architectures call a function from transformers' AttentionInterface, which `record.py`
replaces for the call. The few listed here never do, so their attention modules get forward
hooks for the duration of the capture instead; the hooks read what the module itself computed
(its weights, its projections' outputs) or recompute the queries and keys with the module's own
layers, and every additive term the module puts before its softmax goes into the bias.

One module per family of architectures, each with its WATCHERS table keyed by modeling file and class
(DeBERTa and DeBERTa-v2 both name theirs DisentangledSelfAttention); docs/coverage.md lists the
architectures that remain refused.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

from torch import nn

from .parts import watcher_name
from . import (
    big_bird,
    decoders,
    efficient,
    encoders,
    funnel,
    local_blocks,
    ngram,
    over_layers,
    refusals,
    seq2seq,
    sliding_window,
    xlm_family,
    xlnet,
)

_WATCHERS: dict[str, Callable[[list[nn.Module], object], list]] = {
    **big_bird.WATCHERS,
    **decoders.WATCHERS,
    **efficient.WATCHERS,
    **encoders.WATCHERS,
    **funnel.WATCHERS,
    **local_blocks.WATCHERS,
    **ngram.WATCHERS,
    **refusals.WATCHERS,
    **over_layers.WATCHERS,
    **seq2seq.WATCHERS,
    **sliding_window.WATCHERS,
    **xlm_family.WATCHERS,
    **xlnet.WATCHERS,
}


@contextlib.contextmanager
def watched(model: nn.Module, recorder) -> Iterator[None]:
    """Hook the attention modules of the architectures above; remove every hook afterwards."""
    by_class: dict[str, list[nn.Module]] = {}
    for module in model.modules():
        if watcher_name(module) in _WATCHERS:
            by_class.setdefault(watcher_name(module), []).append(module)
    handles = []
    try:
        for name, modules in by_class.items():
            handles += _WATCHERS[name](modules, recorder)
        yield
    finally:
        for handle in handles:
            handle.remove()
