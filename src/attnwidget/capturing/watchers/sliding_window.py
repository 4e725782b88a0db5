"""Longformer's attention, and LED's encoder (the same code): a sliding window around each token plus global tokens,
computed in band form on an input padded to a multiple of the window; recorded as the dense map over the real tokens.

A local token attends to the tokens at most w = attention_window / 2 away and to every global token; a global token
attends to every token. Global rows are scored with their own projections: query_global of the global token against
key_global of every token, where local rows use query and key. One query and one key per token and layer can express
both exactly by putting the two side by side: every key is [key, key_global], a local row's query is [query, 0] and a
global row's is [0, query_global], so q · k is each row's own score. Captures with global tokens therefore record
2 · head_dim dimensions per head, the second half the global projections; without global tokens, head_dim.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .parts import arguments, asked_for_weights


def _watching_padded(attention_class: str):
    """A watcher for a module that pads its input to a multiple of the attention window (Longformer's model, LED's
    encoder) and runs the windowed self-attention `attention_class` in each of its layers."""

    def watch(owners: list[nn.Module], recorder) -> list:
        real_length: dict[int, int] = {}  # of each owner's input, read before it pads
        owner_of: dict[int, nn.Module] = {}
        attentions: list[nn.Module] = []
        for owner in owners:
            for module in owner.modules():
                if type(module).__name__ == attention_class:
                    owner_of[id(module)] = owner
                    attentions.append(module)
        allowed_of: dict[tuple, tuple] = {}  # layers of one window share their mask: one tensor for the recorder

        def note_length(owner, args, kwargs):
            given = arguments(owner, args, kwargs)
            tokens = next((given[name] for name in ("input_ids", "inputs_embeds") if given.get(name) is not None), None)
            if tokens is not None:  # without either the model raises its own error
                real_length[id(owner)] = tokens.shape[1]

        def record(attention, args, kwargs, output):
            given = arguments(attention, args, kwargs)
            n = real_length[id(owner_of[id(attention)])]
            mask = given["attention_mask"]  # [batch, padded n]: < 0 masked, 0 local, > 0 global
            is_global = mask > 0
            window = attention.one_sided_attn_window_size
            if (id(mask), window) not in allowed_of:
                allowed_of[(id(mask), window)] = (mask, _allowed(mask, window)[..., :n, :n])
            allowed = allowed_of[(id(mask), window)][1]
            weights = _dense(output[1], output[2] if bool(is_global.any()) else None, is_global, window)
            query, key = _query_and_key(attention, given["hidden_states"], is_global)
            cut = (slice(None), slice(None), slice(None, n))  # the model's padding to a window multiple goes
            # The queries come scaled, as the module scales them before the product: the scale is 1.
            recorder.record(attention, query[cut], key[cut], weights[cut][..., :n], allowed, 1.0, None)

        handles = asked_for_weights(attentions)
        handles += [owner.register_forward_pre_hook(note_length, with_kwargs=True) for owner in owners]
        return handles + [attention.register_forward_hook(record, with_kwargs=True) for attention in attentions]

    return watch


def _allowed(mask: torch.Tensor, window: int) -> torch.Tensor:
    """[batch, 1, n, n], True where a query may attend to a key: local rows within the window to local keys, and to
    every global key; global rows to every key that is not padding."""
    n = mask.shape[-1]
    positions = torch.arange(n, device=mask.device)
    near = (positions[:, None] - positions[None, :]).abs() <= window
    is_global, is_masked = (mask > 0)[:, None, :], (mask < 0)[:, None, :]
    local_rows = (near & ~is_global & ~is_masked) | is_global
    return torch.where(is_global.transpose(1, 2), ~is_masked, local_rows)[:, None]


def _dense(band: torch.Tensor, global_rows: torch.Tensor | None, is_global: torch.Tensor, window: int) -> torch.Tensor:
    """The module's weights as [batch, heads, n, n]: `band` is [batch, n, heads, globals + 2 * window + 1] (the
    weights of each row on the global tokens in order, then on the keys i - window .. i + window; a global row's are
    zero), `global_rows` [batch, heads, globals, n] the rows of the global tokens. Each weight lands in one cell."""
    batch, n, heads, width = band.shape
    globals_count = width - (2 * window + 1)
    probs = band.permute(0, 2, 1, 3)
    dense = probs.new_zeros(batch, heads, n, n)
    keys = torch.arange(n, device=band.device)[:, None] + torch.arange(-window, window + 1, device=band.device)
    inside = (keys >= 0) & (keys < n)
    dense.scatter_add_(
        -1, keys.clamp(0, n - 1).expand(batch, heads, n, -1), probs[..., globals_count:].masked_fill(~inside, 0.0)
    )
    if global_rows is None:
        return dense
    # Rows with fewer global tokens than the batch's most hold zeros in their last global columns.
    rank = is_global.long().cumsum(-1) - 1
    batch_of, token_of = is_global.nonzero(as_tuple=True)
    position_of = torch.zeros(batch, globals_count, dtype=torch.long, device=band.device)
    position_of[batch_of, rank[batch_of, token_of]] = token_of
    dense.scatter_add_(-1, position_of[:, None, None, :].expand(-1, heads, n, -1), probs[..., :globals_count])
    dense[batch_of, :, token_of] = global_rows[batch_of, :, rank[batch_of, token_of]]
    return dense


def _query_and_key(attention: nn.Module, hidden: torch.Tensor, is_global: torch.Tensor):
    """[batch, heads, n, head_dim] queries (scaled, as the module scales them) and keys; with global tokens,
    [key, key_global] for every key and [query, 0] or [0, query_global] for each row."""
    batch, n, _ = hidden.shape
    heads, head_dim = attention.num_heads, attention.head_dim

    def per_head(linear, scale=1.0):
        return (linear(hidden) / scale).view(batch, n, heads, head_dim).transpose(1, 2)

    query, key = per_head(attention.query, math.sqrt(head_dim)), per_head(attention.key)
    if not bool(is_global.any()):
        return query, key
    rows = is_global[:, None, :, None]
    global_query = per_head(attention.query_global, math.sqrt(head_dim))
    query = torch.cat([query.masked_fill(rows, 0.0), global_query.masked_fill(~rows, 0.0)], dim=-1)
    return query, torch.cat([key, per_head(attention.key_global)], dim=-1)


WATCHERS = {
    "modeling_longformer.LongformerModel": _watching_padded("LongformerSelfAttention"),
    "modeling_led.LEDEncoder": _watching_padded("LEDEncoderSelfAttention"),
}
