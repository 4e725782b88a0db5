"""Encoders that compute attention over blocks of tokens in their own modules: LongT5 and Pegasus-X.

Their attention is recorded as dense token-by-token maps: every key out of a token's reach is -inf in the bias,
so the picture shows the band or the blocks the model attends within. Keys that are not tokens of the text
(LongT5's transient-global block summaries, Pegasus-X's global tokens) become the sink: per query, the
log-sum-exp of their logits, so the softmax over the tokens and that one logit gives every token its weight
exactly, and the sink what they took together.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from ..result import Sink
from .parts import arguments, asked_for_weights

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


def _keep_every_output(linears: list[nn.Module], handles: list) -> dict[int, list[torch.Tensor]]:
    """Every output of each projection in one forward, in call order, by id: LongT5's transient-global
    attention projects its tokens' keys, then its block summaries' keys, with the same layer."""
    outputs: dict[int, list[torch.Tensor]] = {}

    def keep(linear, args, output):
        outputs.setdefault(id(linear), []).append(output)

    handles += [linear.register_forward_hook(keep) for linear in linears]
    return outputs


def _as_heads(states: torch.Tensor, head_dim: int) -> torch.Tensor:
    return states.unflatten(-1, (-1, head_dim)).transpose(1, 2)


def _masked(bias: torch.Tensor) -> torch.Tensor:
    return bias.masked_fill(bias <= _LONGT5_MASKED, -math.inf)


def _watch_longt5(modules: list[nn.Module], recorder) -> list:
    """LongT5's local attention: each token attends to the tokens within local_radius of it, computed in blocks of
    local_radius + 1 against the block before, its own and the one after. The module returns its weights and its
    additive term (relative position bias plus mask, which every layer takes from the first) in that block
    layout; both are spread out over the tokens. T5 does not scale its scores.

    Transient-global attention adds, after those 3 blocks' keys, one key per global block of global_block_size
    tokens: the layer-normed sum of the block's states, with a bias by block distance of its own. Those keys
    become the sink."""
    handles = asked_for_weights(modules)
    kept = _keep_every_output([linear for attention in modules for linear in (attention.q, attention.k)], handles)
    # Every layer gets the first layer's block bias: spread it out once, kept alive with its id.
    spread: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def record(attention, args, output):
        (query,), (key, *summaries) = (
            [_as_heads(states, attention.key_value_proj_dim) for states in kept.pop(id(linear))]
            for linear in (attention.q, attention.k)
        )
        block_bias, block_weights = output[1], output[2]
        n, local = query.shape[-2], 3 * attention.block_len
        if id(block_bias) not in spread:
            bias = _dense_from_blocks(block_bias[..., :local].expand_as(block_weights[..., :local]), n, -math.inf)
            # The summaries' bias, [batch, blocks, heads, L, globals], as [batch, heads, n, globals].
            summary_bias = block_bias[..., local:].transpose(1, 2).flatten(2, 3)[:, :, :n]
            spread[id(block_bias)] = (block_bias, _masked(bias), _masked(summary_bias))
        _, bias, summary_bias = spread[id(block_bias)]
        weights = _dense_from_blocks(block_weights[..., :local], n, 0.0)
        if not summaries:
            recorder.record(attention, query, key, weights, None, 1.0, bias)
            return
        globals_ = summaries[0].shape[-2]
        sinks = torch.logsumexp(query @ summaries[0].transpose(-1, -2) + summary_bias, dim=-1)
        sink = Sink(
            "<global>",
            f"the summaries of the {globals_} global blocks of {attention.global_block_size} tokens LongT5 attends "
            "to besides its local band",
        )
        recorder.record(attention, query, key, weights, None, 1.0, bias, sinks=sinks, sink=sink)

    return handles + [attention.register_forward_hook(record) for attention in modules]


def _watch_pegasus_x(encoders: list[nn.Module], recorder) -> list:
    """Pegasus-X's encoder: each token attends to the tokens of its own block of block_size and to
    num_global_tokens learned global tokens, which become the sink. The encoder pads the text to a multiple of
    block_size; every other layer also pads block_size // 2 on each side, so that its blocks straddle those of
    the layer before. Queries are scaled before the product. The global tokens' own attention (to every token
    and to each other) is no row of a token, and is not shown."""
    handles: list = []
    lengths: dict[int, int] = {}  # each encoder's number of tokens in this forward, before its padding

    def keep_length(encoder, args, kwargs):
        given = arguments(encoder, args, kwargs)
        tokens = given.get("input_ids")
        lengths[id(encoder)] = (tokens if tokens is not None else given["inputs_embeds"]).shape[1]

    def record(encoder, offset: int, attention, args, kwargs, output):
        given = arguments(attention, args, kwargs)
        states, global_states, mask = given["token_hidden_states"], given["global_hidden_states"], given["attention_mask"]
        batch, block = states.shape[0], attention.block_size
        tokens = slice(offset, offset + lengths[id(encoder)])
        query = attention._shape(attention.q_proj(states) * attention.scaling, states.shape[1], batch)[:, :, tokens]
        key = attention._shape(attention.k_proj(states), states.shape[1], batch)[:, :, tokens]
        global_key = attention._shape(attention.k_proj(global_states), global_states.shape[1], batch)
        blocks = output[2]["local"][..., global_states.shape[1] :]  # [batch, heads, blocks, block, block]
        count = blocks.shape[2]
        weights = blocks.new_zeros(*blocks.shape[:2], count, block, count, block)
        for index in range(count):
            weights[:, :, index, :, index] = blocks[:, :, index]
        weights = weights.flatten(4, 5).flatten(2, 3)[:, :, tokens, tokens]
        position = torch.arange(states.shape[1])[tokens] // block
        same_block = torch.zeros(position.shape * 2).masked_fill(position[:, None] != position[None, :], -math.inf)
        sinks = torch.logsumexp(query @ global_key.transpose(-1, -2), dim=-1)
        sink = Sink("<global>", f"the {global_key.shape[-2]} global tokens Pegasus-X learns")
        mask = mask[:, None, None, tokens]
        recorder.record(attention, query, key, weights, mask, 1.0, same_block, sinks=sinks, sink=sink)

    for encoder in encoders:
        handles.append(encoder.register_forward_pre_hook(keep_length, with_kwargs=True))
        for layer in encoder.layers:
            offset = layer.self_attn.block_size // 2 if layer.stagger_blocks_this_layer else 0
            hook = functools.partial(record, encoder, offset)
            handles.append(layer.self_attn.register_forward_hook(hook, with_kwargs=True))
    return handles


WATCHERS = {
    "modeling_longt5.LongT5LocalAttention": _watch_longt5,
    "modeling_longt5.LongT5TransientGlobalAttention": _watch_longt5,
    "modeling_pegasus_x.PegasusXEncoder": _watch_pegasus_x,  # its attention modules do not know the text's length
}
