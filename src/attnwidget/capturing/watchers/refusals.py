"""Attention with no exact token × token softmax map, refused with what the model computes and what to do instead.

One table, keyed like the watchers ("modeling_<file>.<Class>"). When a listed module is configured the way its
entry describes (`applies`: some of these compute exact softmax attention in other configurations, and are
recorded then), the capture stops with a ValueError before the model runs.
The wording follows what eager `output_attentions` returns: where it returns maps the message names
AttentionWidget.from_attention; where it returns none it says the model has no attention weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from .parts import watcher_name


@dataclass(frozen=True)
class Refusal:
    computes: str
    """What the attention computes instead of an exact softmax map; a template formatted with `module=`."""
    instead: str
    """What to do instead, formatted the same way."""
    applies: Callable[[nn.Module], bool]
    """Whether the module, as configured, computes what `computes` says."""


def _always(module: nn.Module) -> bool:
    return True


REFUSALS: dict[str, Refusal] = {
    "modeling_yoso.YosoSelfAttention": Refusal(
        computes="YOSO has no attention weights to show: it replaces the softmax with the probability that random "
        "hashes of a query and a key collide ((1 - arccos(q·k)/π)^{module.hash_code_len}, or sampled hash buckets) "
        "and applies it to the values without forming normalised weights; its output_attentions returns the "
        "layer's output vectors, not a map",
        instead="attnwidget shows softmax attention weights, and this model has none. To look at the kernel it "
        "estimates anyway, compute (1 - arccos(q·k)/π)^{module.hash_code_len} from its L2-normalised queries and "
        "keys and pass it to AttentionWidget.from_attention(attention, tokens, probabilities=False)",
        applies=_always,
    ),
    "modeling_mra.MraSelfAttention": Refusal(
        computes="MRA has no attention weights to show: it approximates softmax attention at several resolutions "
        "(a coarse average over blocks of {module.num_block} tokens, refined block by block where it is large) and "
        "applies that to the values directly; it returns no map, and its output_attentions gives none",
        instead="attnwidget shows softmax attention weights, and this model forms none. To see the exact softmax "
        "attention it approximates, compute softmax(q·k / √d) from its query and key layers and pass it to "
        "AttentionWidget.from_attention(attention, tokens)",
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
        applies=lambda module: module.num_landmarks != module.seq_len,
    ),
    "modeling_funnel.FunnelRelMultiheadAttention": Refusal(
        computes="This Funnel Transformer pools the sequence between its {module.config.num_blocks} blocks "
        "(block sizes {module.config.block_sizes}): from the second block on, each attention query is a pooled "
        "group of tokens, so those maps are not token × token",
        instead="Pass the first block's maps, eager output_attentions[:{module.config.block_sizes[0]}], to "
        "AttentionWidget.from_attention(attention, tokens); a Funnel model of a single block is recorded exactly",
        applies=lambda module: module.config.num_blocks > 1,
    ),
}


def refuses(model: nn.Module) -> bool:
    """Whether the capture of this model will stop with one of these refusals, which says more than a generic one."""
    return any(watcher_name(m) in REFUSALS and REFUSALS[watcher_name(m)].applies(m) for m in model.modules())


def refusing(name: str, watch: Callable[[list[nn.Module], object], list] | None = None) -> Callable:
    """The watcher of a listed class: refuse, before the pass, when one of its modules computes what the class's
    entry describes; else record them with `watch`."""

    def watcher(modules: list[nn.Module], recorder) -> list:
        refusal = REFUSALS[name]
        for module in modules:
            if refusal.applies(module):
                raise ValueError(f"{refusal.computes.format(module=module)}. {refusal.instead.format(module=module)}.")
        return [] if watch is None else watch(modules, recorder)

    return watcher


WATCHERS = {name: refusing(name) for name in ("modeling_yoso.YosoSelfAttention", "modeling_mra.MraSelfAttention")}
