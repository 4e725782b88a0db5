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

    def first(*names: str) -> int | None:
        values = [getattr(config, name, None) for name in names]
        return next((value for value in values if isinstance(value, int) and value > 0), None)

    layers = first("encoder_layers", "num_hidden_layers", "num_layers", "n_layer")
    heads = first("encoder_attention_heads", "num_attention_heads", "num_heads", "n_head")
    hidden = first("d_model", "hidden_size", "n_embd")
    if layers is None or heads is None:
        return None
    head_dim = first("head_dim", "d_kv") or (hidden // heads if hidden else 64)
    kv_heads = first("num_key_value_heads") or heads
    shapes = [(layers, heads, kv_heads, n_input, n_input)]
    if n_decoder is not None:
        decoder_layers = first("decoder_layers", "num_decoder_layers") or layers
        decoder_heads = first("decoder_attention_heads") or heads
        shapes.append((decoder_layers, decoder_heads, decoder_heads, n_decoder, n_decoder))  # decoder self-attention
        shapes.append((decoder_layers, decoder_heads, decoder_heads, n_decoder, n_input))  # cross-attention
    total = 0
    for stack_layers, stack_heads, stack_kv_heads, n_query, n_key in shapes:
        layer = layer_record_bytes(stack_heads, stack_kv_heads, n_query, n_key, head_dim, attention_itemsize)
        total += stack_layers * layer + stack_heads * n_query * n_key * 4
    return total


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
