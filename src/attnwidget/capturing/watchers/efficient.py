"""Efficient-attention encoders, recorded where they compute exact softmax attention over the tokens: Reformer's
local (chunked) attention and its LSH attention (over the buckets this pass drew), and Nyströmformer when it has a
landmark per position. Where they approximate, `refusals.py` stops the capture with why."""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import nn

from .parts import arguments, asked_for_weights, keep_outputs, watch_asked_with_projections
from .refusals import refusing


def _watch_nystromformer(modules: list[nn.Module], recorder) -> list:
    """Nyströmformer with as many landmarks as segment positions computes plain softmax attention, with queries
    and keys each divided by head_dim ** 0.25. (Its convolution over the values adds to the output, not to the
    weights.)"""

    def terms(attention, given, query, key):
        root = math.sqrt(math.sqrt(attention.attention_head_size))
        return query / root, key / root, given.get("attention_mask"), 1.0, None

    return watch_asked_with_projections(modules, recorder, lambda attention: (attention.query, attention.key), terms)


def _watch_reformer(modules: list[nn.Module], recorder) -> list:
    """Reformer's attention blocks, each holding a local or an LSH attention. The model pads the text to a multiple
    of its chunk lengths; the block is told the text's own length (`orig_sequence_length`), and everything is cut
    back to it."""
    handles = asked_for_weights(modules)
    kept = keep_outputs(
        [getattr(block.self_attention, name) for block in modules for name in ("query", "key", "query_key")
         if hasattr(block.self_attention, name)],
        handles,
    )  # fmt: skip

    masks: dict[tuple, tuple] = {}  # every block gets the same mask: convert it once

    def record(block, args, kwargs, output):
        given = arguments(block, args, kwargs)
        attention, mask = block.self_attention, given.get("attention_mask")

        def split(linear):
            return attention._split_hidden_size_dim(
                kept.pop(id(linear)), attention.num_attention_heads, attention.attention_head_size
            )

        length = given.get("orig_sequence_length") or given["hidden_states"].shape[1]
        terms = _lsh_terms if hasattr(attention, "query_key") else _local_terms
        query, key, weights, bias = terms(attention, split, output, mask, length)
        if mask is not None and (id(mask), length) not in masks:
            masks[id(mask), length] = (mask, mask[:, None, None, :length].bool())
        attend = None if mask is None else masks[id(mask), length][1]
        cut = slice(None, length)
        recorder.record(block, query[:, :, cut], key[:, :, cut], weights[..., cut, cut], attend, 1.0, bias)

    return handles + [block.register_forward_hook(record, with_kwargs=True) for block in modules]


def _local_terms(attention, split, output, mask, length: int):
    """Local attention: keys divided by sqrt(head_dim); chunked maps spread into token order."""
    query, key = split(attention.query), split(attention.key) / math.sqrt(attention.attention_head_size)
    windows = _local_windows(query.shape[-2], length, attention.chunk_length, attention.num_chunks_before,
                             attention.num_chunks_after, attention.is_decoder)  # fmt: skip
    return query, key, _dense(output.attention_probs, windows.chunk_keys), windows.bias


def _lsh_terms(attention, split, output, mask, length: int):
    """LSH attention: one projection for queries and keys, the keys normalised to unit length over sqrt(head_dim).
    Over one chunk it hashes nothing and every token is in view; over several, see `_over_buckets`."""
    query = split(attention.query_key)
    key = attention._len_and_dim_norm(query, math.sqrt(attention.attention_head_size))
    half = query.dtype == torch.float16
    self_score = float(attention.self_mask_value_float16 if half else attention.self_mask_value_float32)
    if output.buckets is None:
        return query, key, output.attention_probs, _lsh_bias(length, attention.is_decoder, self_score)
    return query, key, *_over_buckets(attention, query, key, output.buckets, mask, self_score, length)


@lru_cache(maxsize=16)
def _lsh_bias(length: int, causal: bool, self_score: float) -> torch.Tensor:
    """LSH attention over one chunk replaces a token's score for itself by `self_score` (-1e5), so that it attends
    to itself only when nothing else is visible; a finite term on the diagonal does the same here."""
    bias = torch.eye(length) * self_score
    if causal:
        bias = bias.masked_fill(torch.ones(length, length, dtype=torch.bool).triu(1), -math.inf)
    return bias[None, None]


def _over_buckets(attention, query, key, buckets, mask, self_score: float, length: int):
    """LSH attention over several chunks, as (weights, bias) over the tokens. Each hashing round sorts the tokens by
    bucket, and each token attends to the tokens in its chunk of that order and the chunks around it; the rounds'
    outputs are then mixed in proportion to each round's total exp(score). Together that is one softmax over the
    tokens in which a key counts as often as it was in the token's windows: a bias of log(count), -inf where never.
    `buckets` are the ones this pass drew (random rotations, the same each pass only with config.hash_seed).
    A token that sees only itself (its score replaced by -1e5) gets weight 1 here, while the model's float32 mix
    of rounds at that magnitude scales its output by a number near 1 instead."""
    batch, heads, n, _ = query.shape
    rounds = buckets.shape[2]
    order, _ = attention._get_sorted_bucket_idx_and_undo_sorted_bucket_idx(n, buckets.flatten(2), rounds)
    chunks = attention._split_seq_length_dim_to(order % n, -1, attention.chunk_length, heads)  # tokens, sorted
    windows = attention._look_adjacent(chunks, attention.num_chunks_before, attention.num_chunks_after)
    pairs = (chunks[..., :, None] * n + windows[..., None, :]).flatten(2)  # query * n + key, once per sighting
    counts = query.new_zeros(batch, heads, n * n).scatter_add_(-1, pairs, query.new_ones(pairs.shape))
    bias = counts.view(batch, heads, n, n).log() + torch.eye(n, device=query.device) * self_score
    if attention.is_decoder:
        bias = bias.masked_fill(torch.ones(n, n, dtype=torch.bool, device=query.device).triu(1), -math.inf)
    scores = query @ key.transpose(-1, -2) + bias
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None, None, :].bool(), -math.inf)
    return scores.softmax(-1), bias[..., :length, :length]


class _Windows:
    """Which keys each query of a local attention sees, as a dense additive term: log of how many of its windows
    hold the key (a short sequence of few chunks can see one chunk twice), -inf for none; and, per chunk, the
    token index of every key slot of its window."""

    def __init__(self, n: int, length: int, chunk: int, before: int, after: int, causal: bool):
        if n <= chunk:  # one chunk: plain attention over every position
            self.chunk_keys = None
            counts = torch.ones(n, n)
        else:
            chunks = n // chunk
            offsets = torch.arange(-before, after + 1)
            window_chunks = (torch.arange(chunks)[:, None] + offsets) % chunks  # [chunks, window]
            self.chunk_keys = (window_chunks[..., None] * chunk + torch.arange(chunk)).flatten(1)  # [chunks, slots]
            counts = torch.zeros(chunks, n).scatter_add_(1, self.chunk_keys, torch.ones(self.chunk_keys.shape))
            counts = counts.repeat_interleave(chunk, dim=0)
        if causal:
            counts = counts.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), 0)
        self.bias = counts[None, None, :length, :length].log()  # the text's own positions, without the model's padding


@lru_cache(maxsize=16)
def _local_windows(n: int, length: int, chunk: int, before: int, after: int, causal: bool) -> _Windows:
    return _Windows(n, length, chunk, before, after, causal)


def _dense(weights: torch.Tensor, chunk_keys: torch.Tensor | None) -> torch.Tensor:
    """Chunked local attention [batch, heads, chunks, chunk, slots] as [batch, heads, n, n] in token order: each
    slot's weight goes to its key, and a key seen from two windows gets both."""
    if chunk_keys is None:
        return weights
    batch, heads, chunks, chunk, slots = weights.shape
    index = chunk_keys[:, None, :].expand(chunks, chunk, slots).to(weights.device)
    dense = weights.new_zeros(batch, heads, chunks, chunk, chunks * chunk)
    return dense.scatter_add_(-1, index.expand_as(weights), weights).flatten(2, 3)


WATCHERS = {
    "modeling_nystromformer.NystromformerSelfAttention": refusing(
        "modeling_nystromformer.NystromformerSelfAttention", _watch_nystromformer
    ),
    "modeling_reformer.ReformerAttention": _watch_reformer,
}
