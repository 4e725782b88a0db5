"""Encoders that compute attention over blocks of tokens in their own modules.

LongT5's local attention is recorded as dense token-by-token maps: every key out of a token's reach is -inf in
the bias, so the picture shows the band the model attends within. LongT5's transient-global attention and
Pegasus-X's global tokens are refused: part of every softmax goes to keys that are not tokens of the text.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from .parts import asked_for_weights, keep_outputs, pop_heads

# LongT5 masks a key by adding -1e10 to its relative position bias: anything this low is a masked key.
_LONGT5_MASKED = -1e9


def _dense_from_blocks(blocks: torch.Tensor, n: int, fill: float) -> torch.Tensor:
    """Block-local scores or weights [batch, blocks, heads, L, 3L] as [batch, heads, n, n] over the tokens.

    Query c·L + i is row i of block c, whose 3L columns are the keys (c-1)·L ... (c+2)·L - 1: the block before,
    its own and the one after. Every other key gets `fill`; the padding up to a multiple of L is cut off."""
    batch, count, heads, length, _ = blocks.shape
    # Keys are laid out with one block of room on each side, so block c's window starts at column c·L.
    dense = blocks.new_full((batch, heads, count, length, (count + 2) * length), fill)
    for block in range(count):
        dense[:, :, block, :, block * length : (block + 3) * length] = blocks[:, block]
    return dense.flatten(2, 3)[:, :, :n, length : length + n]


def _watch_longt5_local(modules: list[nn.Module], recorder) -> list:
    """LongT5's local attention: each token attends to the tokens within local_radius of it, computed in blocks of
    local_radius + 1 against the block before, its own and the one after. The module returns its weights and its
    additive term (relative position bias plus mask, which every layer takes from the first) in that block
    layout; both are spread out over the tokens. T5 does not scale its scores."""
    handles = asked_for_weights(modules)
    kept = keep_outputs([linear for attention in modules for linear in (attention.q, attention.k)], handles)
    dense_biases: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # the block bias kept alive with its id

    def record(attention, args, output):
        query, key = pop_heads(kept, (attention.q, attention.k), attention.key_value_proj_dim)
        block_bias, block_weights = output[1], output[2]
        n = query.shape[-2]
        if id(block_bias) not in dense_biases:
            bias = _dense_from_blocks(block_bias.expand_as(block_weights), n, -math.inf)
            dense_biases[id(block_bias)] = (block_bias, bias.masked_fill(bias <= _LONGT5_MASKED, -math.inf))
        weights = _dense_from_blocks(block_weights, n, 0.0)
        recorder.record(attention, query, key, weights, None, 1.0, dense_biases[id(block_bias)][1])

    return handles + [attention.register_forward_hook(record) for attention in modules]


def _refusing(why: str) -> Callable[[list[nn.Module], object], list]:
    """A watcher that refuses the model before it runs, saying `why` its encoder has no token-by-token map; its
    decoder's attention, in eager output_attentions, can still be shown."""

    def refuse(modules: list[nn.Module], recorder) -> list:
        raise ValueError(
            f"{why} To look at the decoder, load the model with attn_implementation='eager', run it with "
            "output_attentions=True, and pass outputs.decoder_attentions and outputs.cross_attentions to "
            "AttentionWidget.from_attention(decoder_attention=..., cross_attention=..., encoder_tokens=..., "
            "decoder_tokens=...)"
        )

    return refuse


_TRANSIENT_GLOBAL = (
    "LongT5 with encoder_attention_type='transient-global' cannot be shown token by token: besides the tokens "
    "within local_radius, each token attends to one summary of every global_block_size tokens, which the model "
    "computes as extra keys. Part of every row of its softmax goes to those summaries, so a map over the tokens "
    "would not be the model's attention (its eager encoder attention is in blocks, [batch, blocks, heads, block, "
    "3 x block + summaries]). A LongT5 with local attention is captured exactly."
)
_GLOBAL_TOKENS = (
    "Pegasus-X's encoder attention cannot be shown token by token: each token attends to its own block of "
    "block_size tokens and to num_global_tokens learned global tokens, which are no tokens of the text (and attend "
    "to every token themselves). Part of every row of its softmax goes to those global tokens, so a map over the "
    "tokens would not be the model's attention (its eager encoder attentions are dicts of blocks: 'local', "
    "[batch, heads, blocks, block_size, num_global_tokens + block_size], and 'global', the global tokens' own)."
)


WATCHERS = {
    "modeling_longt5.LongT5LocalAttention": _watch_longt5_local,
    "modeling_longt5.LongT5TransientGlobalAttention": _refusing(_TRANSIENT_GLOBAL),
    "modeling_pegasus_x.PegasusXGlobalLocalAttention": _refusing(_GLOBAL_TOKENS),
}
