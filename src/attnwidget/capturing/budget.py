"""How much memory a capture holds on the CPU, estimated before the model runs and counted while it records.

Both sides size a layer record with `layer_record_bytes`, so the estimate and the accounting cannot
disagree about what one layer costs; they differ only in what they know (a config against real arrays).
"""

from __future__ import annotations

DEFAULT_MAX_MEMORY_BYTES = 4 * 2**30
QUERY_KEY_ITEMSIZE = 4
"""Queries and keys are kept as float32 whatever the model's dtype."""


class MemoryBudgetError(ValueError):
    """The capture would hold more than `max_memory_bytes` on the CPU.

    `problem` says so without advice, for callers that word the advice their own way (the CLI's flags).
    """

    def __init__(self, needed: int, budget: int, when: str):
        self.needed = needed
        self.budget = budget
        needed_text, budget_text = _sizes(needed, budget)
        self.problem = f"this capture needs {needed_text} {when}, over the budget of {budget_text}"
        super().__init__(
            f"{self.problem}; pass max_memory_bytes=... to raise it, attention_dtype='float16' to halve the attention "
            "kept for layers whose attention cannot be rebuilt from queries and keys, or use a shorter text"
        )


def _sizes(needed: int, budget: int) -> tuple[str, str]:
    """Both sizes in the largest unit that still tells them apart ("6,144 MiB" against "4,096 MiB"),
    down to exact bytes: a budget of 1000 bytes must not read "needs 0 MiB, over the budget of 0 MiB"."""
    for unit, size in (("MiB", 2**20), ("KiB", 2**10)):
        if budget >= size:
            texts = tuple(f"{nbytes / size:,.0f} {unit}" for nbytes in (needed, budget))
            if texts[0] != texts[1]:
                return texts
    return f"{needed:,} bytes", f"{budget:,} bytes"


def layer_record_bytes(
    heads: int, kv_heads: int, n_query: int, n_key: int, head_dim: int, attention_itemsize: int
) -> int:
    """Bytes one layer record holds: its queries and keys, and its attention if stored.

    `attention_itemsize` is 0 for a layer whose attention is derived from queries and keys on each read.
    """
    query_key = QUERY_KEY_ITEMSIZE * head_dim * (heads * n_query + kv_heads * n_key)
    return query_key + attention_itemsize * heads * n_query * n_key


def estimated_bytes(config, n_input: int, n_decoder: int | None, attention_itemsize: int) -> int | None:
    """What a capture will hold, from the model's config; None if the config does not say its shape.

    Assumes every layer keeps the attention the same way: pass `attention_itemsize=0` when the capture
    expects to derive it (a float32 capture of a float32 model, which MiniLM and most layers of most
    architectures allow), else the itemsize it is stored in. A layer that turns out not to derive
    exactly is stored after all; the accounting while recording (`MemoryBudget`) counts it and stops
    the capture if that takes it over the budget. Each stack adds one float32 bias (mask or position
    bias) of at most heads x n_query x n_key values.
    """

    layers = _first(config, "encoder_layers", "num_hidden_layers", "num_layers", "n_layer")
    shapes = [] if layers is None else [_head_shape(layer) for layer in _layer_configs(config, layers)]
    if not shapes or None in shapes:
        return None
    total = sum(layer_record_bytes(h, kv, n_input, n_input, dim, attention_itemsize) for h, kv, dim in shapes)
    total += max(heads for heads, _, _ in shapes) * n_input * n_input * 4
    if n_decoder is not None:
        heads, _, head_dim = shapes[0]
        decoder_layers = _first(config, "decoder_layers", "num_decoder_layers") or layers
        decoder_heads = _first(config, "decoder_attention_heads") or heads
        for n_key in (n_decoder, n_input):  # decoder self-attention, cross-attention
            layer = layer_record_bytes(decoder_heads, decoder_heads, n_decoder, n_key, head_dim, attention_itemsize)
            total += decoder_layers * layer + decoder_heads * n_decoder * n_key * 4
    return total


def _head_shape(config) -> tuple[int, int, int] | None:
    """(heads, kv_heads, head_dim) of a layer, from the config it reads; None if the config does not say."""
    heads = _first(config, "encoder_attention_heads", "num_attention_heads", "num_heads", "n_head")
    if heads is None:
        return None
    hidden = _first(config, "d_model", "hidden_size", "n_embd")
    head_dim = _first(config, "head_dim", "d_kv") or (hidden // heads if hidden else 64)
    return heads, _first(config, "num_key_value_heads") or heads, head_dim


def _first(config, *names: str) -> int | None:
    """The first of `names` the config sets to a positive integer."""
    values = [getattr(config, name, None) for name in names]
    return next((value for value in values if isinstance(value, int) and value > 0), None)


def _layer_configs(config, layers: int) -> list:
    """The config each layer reads its shape from. A heterogeneous config (Gemma 4: head_dim differs between
    sliding and full layers) refuses to answer per-layer attributes globally; each layer has its own."""
    if getattr(config, "is_heterogeneous", False):
        return list(config.per_layer_config)
    return [config] * layers


def check_estimate(config, n_input: int, n_decoder: int | None, attention_itemsize: int, budget: int) -> None:
    """Refuse, before anything runs, a capture whose estimate is over the budget."""
    needed = estimated_bytes(config, n_input, n_decoder, attention_itemsize)
    if needed is not None and needed > budget:
        raise MemoryBudgetError(needed, budget, "by estimate")


class MemoryBudget:
    """The bytes a recording holds so far; raises `MemoryBudgetError` as soon as they pass the budget."""

    def __init__(self, budget: int):
        self.budget = budget
        self.held = 0

    def hold(self, nbytes: int) -> None:
        self.held += nbytes
        if self.held > self.budget:
            raise MemoryBudgetError(self.held, self.budget, "so far")
