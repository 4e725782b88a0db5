"""Attention with no exact token × token softmax map, refused with what the model computes and what to do instead.

One table, keyed like the watchers ("modeling_<file>.<Class>"). A listed module gets a pre-hook for the capture:
when it is about to run the way its entry describes (`applies`: some of these compute exact softmax attention in
other configurations or at shorter lengths, and are recorded then), the capture stops with a ValueError.
The wording follows what eager `output_attentions` returns: where it returns maps the message names
AttentionWidget.from_attention; where it returns none it says the model has no attention weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from .parts import arguments


@dataclass(frozen=True)
class Refusal:
    computes: str
    """What the attention computes instead of an exact softmax map; a template formatted with `module=`."""
    instead: str
    """What to do instead, formatted the same way."""
    applies: Callable[[nn.Module, dict], bool]
    """Whether the module, called with these arguments, computes what `computes` says."""


def _always(module: nn.Module, given: dict) -> bool:
    return True


REFUSALS: dict[str, Refusal] = {
    "modeling_yoso.YosoSelfAttention": Refusal(
        computes="YOSO has no attention weights to show: it replaces the softmax with the probability that random "
        "hashes of a query and a key collide ((1 - arccos(q·k)/π)^{module.hash_code_len}, or sampled hash buckets) "
        "and applies it to the values without forming normalised weights; its output_attentions returns the "
        "layer's output vectors, not a map",
        instead="attnwidget shows softmax attention weights, and this model has none. To look at the kernel it "
        "estimates anyway, compute (1 - arccos(q·k)/π)^{module.hash_code_len} from its L2-normalised queries and keys "
        "and pass it to AttentionWidget.from_attention(attention, tokens, probabilities=False)",
        applies=_always,
    ),
    "modeling_nystromformer.NystromformerSelfAttention": Refusal(
        computes="This Nyströmformer approximates softmax attention through {module.num_landmarks} landmarks (means "
        "of segments of its {module.seq_len} queries and keys): its map is a product of three small softmax maps "
        "and an iterative pseudo-inverse, approximate, with no exact token × token softmax behind it",
        instead="To see the exact softmax attention it approximates, load it with num_landmarks equal to "
        "segment_means_seq_len ({module.seq_len}) in its config, which attnwidget records exactly; or compute the "
        "approximate n × n map yourself and pass it to AttentionWidget.from_attention(attention, tokens, "
        "probabilities=False)",
        applies=lambda module, given: module.num_landmarks != module.seq_len,
    ),
    "modeling_reformer.LSHSelfAttention": Refusal(
        computes="Reformer's LSH attention layers see more than {module.chunk_length} positions here, so they hash "
        "queries and keys into buckets with random rotations (drawn anew on every pass unless config.hash_seed is "
        "set) and attend within chunks of the bucket-sorted sequence: there is no token × token map in token order",
        instead="Pass a shorter text: where its LSH layers see at most {module.chunk_length} positions (the model "
        "pads the text to a multiple of its chunk lengths), they attend to every token and attnwidget records them "
        "exactly; or load the model with a larger lsh_attn_chunk_length, for the full attention that hashing "
        "approximates. Eager output_attentions holds these maps in bucket-sorted chunks without their order, which "
        "AttentionWidget.from_attention cannot take",
        applies=lambda module, given: given["hidden_states"].shape[1] > module.chunk_length,
    ),
    "modeling_funnel.FunnelRelMultiheadAttention": Refusal(
        computes="This Funnel Transformer pools the sequence between its {module.config.num_blocks} blocks "
        "(block sizes {module.config.block_sizes}): from the second block on, each attention query is a pooled "
        "group of tokens, so those maps are not token × token",
        instead="Pass the first block's maps, eager output_attentions[:{module.config.block_sizes[0]}], to "
        "AttentionWidget.from_attention(attention, tokens); a Funnel model of a single block is recorded exactly",
        applies=lambda module, given: module.config.num_blocks > 1,
    ),
}


def refuse_listed(modules: list[nn.Module], refusal: Refusal) -> list:
    """Pre-hooks that stop the capture when one of these modules is about to compute what `refusal` describes."""

    def check(module, args, kwargs):
        if refusal.applies(module, arguments(module, args, kwargs)):
            raise ValueError(f"{refusal.computes.format(module=module)}. {refusal.instead.format(module=module)}.")

    return [module.register_forward_pre_hook(check, with_kwargs=True) for module in modules]


def refusing(name: str, watch: Callable[[list[nn.Module], object], list] | None = None) -> Callable:
    """The watcher of a listed class: refuse what its table entry describes, and record the rest with `watch`."""

    def watcher(modules: list[nn.Module], recorder) -> list:
        handles = refuse_listed(modules, REFUSALS[name])
        return handles + ([] if watch is None else watch(modules, recorder))

    return watcher


WATCHERS = {"modeling_yoso.YosoSelfAttention": refusing("modeling_yoso.YosoSelfAttention")}
