"""BigBird and BigBird-Pegasus's encoder: full attention, or block-sparse attention (global, sliding and random
blocks of keys), both recorded as a dense map over the real tokens.

Block-sparse attention needs inputs longer than (5 + 2 * num_random_blocks) * block_size tokens. Given a shorter
one, transformers' forward switches the model to full attention for good: it replaces every attention submodule
(moving their projections over) and never switches back. So the hooks sit on the attention wrappers, which stay,
and on the projections, which move; and the capture puts the original submodules and attention types back, so
the model is left as it was, whatever its input did to it.

Block-sparse attention pads its input to a multiple of block_size with masked tokens, cut off here. Its dense
map (what eager `output_attentions` returns) writes each key once, but in eval mode a key can enter a query's
softmax more than once (see `_key_counts`): the weights recorded here count every entry, so each row sums to 1
and the map times the values is the module's output; softmax(q·k×scale + log(count)) gives them back.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .parts import arguments, keep_outputs, pop_heads


def _switchable(container: nn.Module) -> list[nn.Module]:
    """The modules under `container` (itself included) whose attention type its forward may switch."""
    return [module for module in container.modules() if isinstance(getattr(module, "attention_type", None), str)]


def _wrappers(container: nn.Module) -> list[nn.Module]:
    """The attention modules that stay when the type switches: their `self` submodule is what gets replaced."""
    return [module for module in _switchable(container) if "self" in module._modules]


class _AttentionTypesKept:
    """A handle whose removal puts back every attention type and attention submodule under `container`."""

    def __init__(self, container: nn.Module):
        self._types = [(module, module.attention_type) for module in _switchable(container)]
        self._inner = [(wrapper, wrapper.self) for wrapper in _wrappers(container)]

    def remove(self) -> None:
        for module, attention_type in self._types:
            module.attention_type = attention_type
        for module, inner in self._inner:
            module.self = inner


def _key_counts(blocks: int, block_size: int, random_blocks: int) -> torch.Tensor:
    """How many times each key enters each query's softmax in block-sparse attention in eval mode, as [n, n].

    The first and last query blocks attend to every key. Every other query block attends to the first and last
    key blocks (global), to itself and its two neighbours (sliding), and to `random_blocks` random blocks, which
    transformers draws only in training: in eval they are all the first block, whose keys count 1 + random_blocks
    times there."""
    counts = torch.zeros(blocks, blocks)
    counts[[0, -1]] = 1
    for block in range(1, blocks - 1):
        counts[block, [0, block - 1, block, block + 1, blocks - 1]] = 1
    counts[1:-1, 0] += random_blocks
    return counts.repeat_interleave(block_size, 0).repeat_interleave(block_size, 1)


def _watch_big_bird(containers: list[nn.Module], recorder) -> list:
    """`containers` are the modules whose forward may switch the attention type (BigBirdModel, BigBird-Pegasus's
    encoder); every attention wrapper inside them is recorded, with the wrapper as the layer's module."""
    handles: list = [_AttentionTypesKept(container) for container in containers]
    wrappers = [wrapper for container in containers for wrapper in _wrappers(container)]
    kept = keep_outputs([linear for wrapper in wrappers for linear in (wrapper.self.query, wrapper.self.key)], handles)
    length: dict[str, int] = {}  # the running container's input length, before block-sparse padding
    sparse_terms: dict[str, object] = {}  # the same mask in every layer of one forward: one set of terms

    def note_length(container, args, kwargs):
        given = arguments(container, args, kwargs)
        tokens = given.get("input_ids")
        length["tokens"] = (tokens if tokens is not None else given["inputs_embeds"]).shape[1]

    def block_sparse_terms(inner, to_mask):
        if sparse_terms.get("to_mask") is not to_mask:
            padded, n = to_mask.shape[-1], length["tokens"]
            counts = _key_counts(padded // inner.block_size, inner.block_size, inner.num_random_blocks)
            counts = counts.to(to_mask.device)[:n, :n]
            sparse_terms.update(
                to_mask=to_mask,  # kept alive: it is the key of these terms
                counts=counts,
                mask=(counts > 0) & to_mask[..., :n].bool(),
                bias=counts.clamp(min=1).log()[None, None],
            )
        return sparse_terms

    def record(wrapper, args, kwargs, output):
        given = arguments(wrapper, args, kwargs)
        inner = wrapper.self
        query, key = pop_heads(kept, (inner.query, inner.key), inner.attention_head_size)
        scaling = 1 / math.sqrt(inner.attention_head_size)
        if wrapper.attention_type == "original_full":
            cross = given.get("encoder_hidden_states") is not None
            mask = given.get("encoder_attention_mask") if cross else given.get("attention_mask")
            recorder.record(wrapper, query, key, output[1], mask, scaling, None)
            return
        terms = block_sparse_terms(inner, given["to_mask"])
        n = terms["counts"].shape[-1]
        weights = output[1][..., :n, :n] * terms["counts"]
        recorder.record(wrapper, query[:, :, :n], key[:, :, :n], weights, terms["mask"], scaling, terms["bias"])

    handles += [container.register_forward_pre_hook(note_length, with_kwargs=True) for container in containers]
    return handles + [wrapper.register_forward_hook(record, with_kwargs=True) for wrapper in wrappers]


WATCHERS = {
    "modeling_big_bird.BigBirdModel": _watch_big_bird,
    "modeling_bigbird_pegasus.BigBirdPegasusEncoder": _watch_big_bird,
}
