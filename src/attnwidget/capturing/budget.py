"""How much memory a capture holds on the CPU, estimated before the model runs and counted while it records,
and how much one attention call may compute at once.

Both sides size a layer record with `layer_record_bytes`, so the estimate and the accounting cannot
disagree about what one layer costs; they differ only in what they know (a config against real arrays).

`max_memory_bytes` bounds what the capture holds. What it computes on the way is bounded too: eager attention
holds a layer's scores and weights at once (2 GiB each at 4096 tokens x 32 heads), so a layer whose weights
would pass 1/`EAGER_SHARE` of the budget runs in chunks of query rows that stay under it (`eager_chunk_rows`).
The peak of a capture is then about what it holds plus 2/`EAGER_SHARE` of the budget.
"""

from __future__ import annotations

DEFAULT_MAX_MEMORY_BYTES = 4 * 2**30
QUERY_KEY_ITEMSIZE = 4
"""Queries and keys are kept as float32 whatever the model's dtype."""
EAGER_SHARE = 16
"""One attention call's weights may take 1/16 of `max_memory_bytes` (256 MiB of the default 4 GiB: MiniLM up to
about 2,360 tokens, a 32-head model up to 1,448) before the layer is computed in chunks of query rows."""
WEIGHTS_ITEMSIZE = 4
"""Eager attention computes its softmax in float32 whatever the model's dtype."""


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


def eager_chunk_rows(batch: int, heads: int, n_query: int, n_key: int, budget: int) -> int | None:
    """None when one attention call's weights fit 1/`EAGER_SHARE` of the budget, so it runs whole as today;
    else how many query rows to compute at once to stay under that share (at least one)."""
    share = budget // EAGER_SHARE
    row_bytes = WEIGHTS_ITEMSIZE * batch * heads * n_key
    if row_bytes * n_query <= share:
        return None
    return max(1, share // row_bytes)


def estimated_bytes(config, n_input: int, n_decoder: int | None, attention_itemsize: int) -> int | None:
    """What a capture will hold, from the model's config; None if the config does not say its shape.

    Assumes every layer keeps the attention the same way: pass `attention_itemsize=0` when the capture
    expects to derive it (a float32 capture of a float32 model, which MiniLM and most layers of most
    architectures allow), else the itemsize it is stored in. A layer that turns out not to derive
    exactly is stored after all; the accounting while recording (`MemoryBudget`) counts it and stops
    the capture if that takes it over the budget. Each stack adds one float32 bias: a mask, n_query x n_key
    values shared by every head and layer, or heads times that where the config names a position bias per
    head (`_bias_heads`). Counting the mask once per head would refuse, by estimate, a 32-head model's
    6,000-token capture that holds well under 1 GiB.
    """

    layers = _layers(config)
    shapes = [] if layers is None else [_head_shape(layer) for layer in _layer_configs(config, layers)]
    if not shapes or None in shapes:
        return None
    total = sum(layer_record_bytes(h, kv, n_input, n_input, dim, attention_itemsize) for h, kv, dim in shapes)
    total += _bias_heads(config, max(heads for heads, _, _ in shapes)) * n_input * n_input * 4
    if n_decoder is not None:
        heads, _, head_dim = shapes[0]
        decoder_layers = _decoder_layers(config, layers)
        decoder_heads = _first(config, "decoder_attention_heads") or heads
        for n_key in (n_decoder, n_input):  # decoder self-attention, cross-attention
            layer = layer_record_bytes(decoder_heads, decoder_heads, n_decoder, n_key, head_dim, attention_itemsize)
            total += decoder_layers * layer + _bias_heads(config, decoder_heads) * n_decoder * n_key * 4
    return total


def _bias_heads(config, heads: int) -> int:
    """Heads of a stack's bias: 1 for a mask, `heads` where the model adds a position bias per head (T5's
    relative buckets, DeBERTa's relative attention, ALiBi). A model whose config hides it is counted while
    recording, as every bias is."""
    per_head = (
        getattr(config, "relative_attention_num_buckets", None)
        or getattr(config, "relative_attention", False) is True
        or getattr(config, "alibi", False) is True
        or getattr(getattr(config, "attn_config", None), "alibi", False) is True
        or getattr(config, "model_type", None) == "bloom"
    )
    return heads if per_head else 1


def attention_calls(config, encoder_decoder: bool) -> int | None:
    """How many attention calls one forward pass makes: one per layer, and an encoder-decoder's decoder
    layers two (self- and cross-attention); None when the config does not say."""
    layers = _layers(config)
    if layers is None or not encoder_decoder:
        return layers
    return layers + 2 * _decoder_layers(config, layers)


def _layers(config) -> int | None:
    """Layers of the encoder, or of the only stack."""
    return _first(config, "encoder_layers", "num_hidden_layers", "num_layers", "n_layer")


def _decoder_layers(config, layers: int) -> int:
    return _first(config, "decoder_layers", "num_decoder_layers") or layers


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
