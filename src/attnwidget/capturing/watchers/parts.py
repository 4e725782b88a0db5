"""What the module recorders share: keeping projection outputs, reading call arguments, asking a module
for its weights, and the recorders built from those: BERT-style and fused-projection ones."""

from __future__ import annotations

import inspect

import torch
from torch import nn


def watcher_name(module: nn.Module) -> str:
    """How the WATCHERS tables name a module's class: "modeling_<file>.<Class>"."""
    return f"{type(module).__module__.rsplit('.', 1)[-1]}.{type(module).__name__}"


def keep_outputs(linears: list[nn.Module], handles: list) -> dict[int, object]:
    """The latest output of each projection, by id, filled by forward hooks added to `handles`."""
    outputs: dict[int, object] = {}

    def keep(linear, args, output):
        outputs[id(linear)] = output

    handles += [linear.register_forward_hook(keep) for linear in linears]
    return outputs


def pop_heads(outputs: dict[int, object], linears: tuple, head_dim: int) -> list[torch.Tensor]:
    """The kept outputs of these projections, taken out, as [batch, heads, n, head_dim]."""
    return [outputs.pop(id(linear)).unflatten(-1, (-1, head_dim)).transpose(1, 2) for linear in linears]


def arguments(module: nn.Module, args: tuple, kwargs: dict) -> dict:
    """A module's call arguments by name, however the caller passed them."""
    return inspect.signature(module.forward).bind(*args, **kwargs).arguments


def asked_for_weights(modules: list[nn.Module]) -> list:
    """Pre-hooks that pass output_attentions=True: these modules return their weights only when asked. Their
    callers pass the extra output along unread unless the user asked for attentions too. Modules without the
    argument (ConvBERT's) return their weights always."""

    def ask(attention, args, kwargs):
        given = inspect.signature(attention.forward).bind(*args, **kwargs)  # by name, wherever it was passed
        given.arguments["output_attentions"] = True
        return given.args, given.kwargs

    askable = [module for module in modules if "output_attentions" in inspect.signature(module.forward).parameters]
    return [attention.register_forward_pre_hook(ask, with_kwargs=True) for attention in askable]


def watch_asked_with_projections(modules: list[nn.Module], recorder, projections_of, terms, weights_at=1) -> list:
    """BERT-style modules that return their weights only when asked, with their own query and key projections:
    `terms(module, arguments, query, key)` gives (query, key, mask, scaling, bias) as the module scores them;
    the weights are the module's output at `weights_at` (LUKE returns its entities' states before them)."""
    handles = asked_for_weights(modules)
    kept = keep_outputs([linear for module in modules for linear in projections_of(module)], handles)

    def record(attention, args, kwargs, output):
        head_dim = getattr(attention, "attention_head_size", None) or attention.head_dim  # BERT's name, BART's
        query, key = pop_heads(kept, projections_of(attention), head_dim)
        query, key, mask, scaling, bias = terms(attention, arguments(attention, args, kwargs), query, key)
        recorder.record(attention, query, key, output[weights_at], mask, scaling, bias)

    return handles + [attention.register_forward_hook(record, with_kwargs=True) for attention in modules]


def watch_fused(modules: list[nn.Module], recorder, fused_of, terms) -> list:
    """Modules that return their weights, with one fused query-key-value projection `fused_of(module)`:
    `terms(module, arguments, fused)` gives (query, key, mask, scaling, bias) from its output as the module scores."""
    handles: list = []
    kept = keep_outputs([fused_of(module) for module in modules], handles)

    def record(attention, args, kwargs, output):
        fused = kept.pop(id(fused_of(attention)))
        query, key, mask, scaling, bias = terms(attention, arguments(attention, args, kwargs), fused)
        recorder.record(attention, query, key, output[1], mask, scaling, bias)

    return handles + [attention.register_forward_hook(record, with_kwargs=True) for attention in modules]
