"""Two runs over the same tokens as one capture: for each stack S, the runs' own stacks "A:S" and "B:S" and their
difference "A-B:S", signed, in [-1, 1] (docs/data-contract.md, "Compared runs"; `AttentionWidget.compare`).

The runs' own stacks share the runs' layer records (nothing is copied); the difference is computed once, a head at a
time, with each head's Jensen–Shannon distance (`analysis/divergence.py`) on the way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..analysis.divergence import js_distance
from .result import RUN_SEPARATOR, Capture, LayerRecord, StackRecord, TokenSide

MAX_DIFFERENCE_BYTES = 2**30
"""The most float32 the difference stacks may hold (1 GiB): MiniLM to about 1,900 tokens, a 32 × 32 Llama to about
500. Beyond, `compare(..., layers=[...])` compares some layers, or a shorter text all of them."""
DEFAULT_NAMES = ("A", "B")
_FORBIDDEN_IN_NAMES = (RUN_SEPARATOR, "/")


@dataclass(frozen=True)
class Comparison:
    """The compared capture, and the Jensen–Shannon distance of each head of its difference stacks."""

    capture: Capture
    distances: dict[tuple[str, int, int], float]
    """(difference stack, layer, head) -> mean JS distance between A's and B's rows."""


def difference_stack_name(names: Sequence[str], stack: str) -> str:
    return f"{names[0]}-{names[1]}{RUN_SEPARATOR}{stack}"


def run_stack_name(name: str, stack: str) -> str:
    return f"{name}{RUN_SEPARATOR}{stack}"


def same_tokens(a: Capture, b: Capture) -> bool:
    """Whether two captures read the same token sides: the same token ids (the same strings where a capture holds
    only strings, as from attention tensors)."""
    if a.sides.keys() != b.sides.keys():
        return False
    return all(_side_key(a.sides[name]) == _side_key(b.sides[name]) for name in a.sides)


def _side_key(side: TokenSide) -> tuple:
    by_ids = all(token_id >= 0 for token_id in side.token_ids)
    return ("ids", tuple(side.token_ids)) if by_ids else ("tokens", tuple(side.raw_tokens))


def compare_captures(
    a: Capture, b: Capture, names: Sequence[str] = DEFAULT_NAMES, layers: Sequence[int] | None = None
) -> Comparison:
    """One capture holding, for each stack S of two runs over the same tokens, "A-B:S", "A:S" and "B:S" (with the
    run names of `names`); `layers` keeps those layer indices of every stack. Refused, saying what to do, when the runs
    differ in tokens, stacks, layers, heads or sinks, or when the difference would pass `MAX_DIFFERENCE_BYTES`."""
    names = _checked_names(names)
    if not same_tokens(a, b):
        raise ValueError(
            "the two captures read different tokens, so their attention cannot be subtracted; "
            "AttentionWidget.compare(a, b) shows such runs side by side instead"
        )
    _check_same_shape(a, b, names)
    chosen = _checked_layers(a, layers)
    _check_size(a, chosen)
    stacks, distances = [], {}
    for stack in a.recorded_stacks:
        own = [_run_stack(capture, name, stack, chosen[stack]) for capture, name in zip((a, b), names)]
        difference, head_distances = _difference(own[0], own[1], difference_stack_name(names, stack))
        stacks += [difference, *own]
        distances.update(head_distances)
    # Derived stacks (rollout, words) and their word sides are the runs' views, not what they recorded: left out.
    sides = [side for side in a.sides.values() if side.words_of is None]
    return Comparison(Capture(sides, stacks), distances)


def _checked_names(names: Sequence[str]) -> tuple[str, str]:
    names = tuple(names) if not isinstance(names, str) else (names,)
    if len(names) != 2 or not all(isinstance(name, str) and name for name in names) or names[0] == names[1]:
        raise ValueError(f"names must be two different non-empty strings, like ('base', 'tuned'); got {names!r}")
    bad = [name for name in names if any(char in name for char in _FORBIDDEN_IN_NAMES)]
    if bad:
        raise ValueError(f"run names name stacks ('{names[0]}:self'), so they cannot hold ':' or '/'; got {bad}")
    return names


def _check_same_shape(a: Capture, b: Capture, names: tuple[str, str]) -> None:
    na, nb = names
    if a.recorded_stacks != b.recorded_stacks:
        raise ValueError(
            f"{na} has stacks {list(a.recorded_stacks)} and {nb} has {list(b.recorded_stacks)}; only runs of the same "
            "kind of model (both decoder-only or encoder-only, or both encoder-decoders) can be subtracted"
        )
    for stack in a.recorded_stacks:
        for what, count in (("layers", Capture.num_layers), ("heads", Capture.num_heads)):
            if count(a, stack) != count(b, stack):
                raise ValueError(
                    f"stack {stack!r}: {na} has {count(a, stack)} {what} and {nb} has {count(b, stack)} {what}; "
                    f"A − B needs the same {what} in both (compare(a, b, layers=[...]) keeps the layers you name of "
                    "both runs)"
                )
        for layer in range(a.num_layers(stack)):
            if (a.sinks(layer, stack) is None) != (b.sinks(layer, stack) is None):
                raise ValueError(
                    f"stack {stack!r} layer {layer} has an attention sink in one run only, so its rows do not "
                    "share their keys; compare runs of the same architecture"
                )


def _checked_layers(a: Capture, layers: Sequence[int] | None) -> dict[str, list[int]]:
    chosen = {}
    for stack in a.recorded_stacks:
        count = a.num_layers(stack)
        indices = list(range(count)) if layers is None else [int(layer) for layer in layers]
        if not indices or any(not 0 <= layer < count for layer in indices) or len(set(indices)) != len(indices):
            raise ValueError(f"layers must be distinct layer indices in 0..{count - 1} (stack {stack!r}); got {layers}")
        chosen[stack] = indices
    return chosen


def difference_bytes(capture: Capture, chosen: dict[str, list[int]]) -> int:
    """What the difference stacks hold: float32 for every head of every chosen layer."""
    return sum(
        4 * len(indices) * capture.num_heads(stack) * len(query) * len(key)
        for stack, indices in chosen.items()
        for query, key in [capture.stack_tokens(stack)]
    )


def _check_size(capture: Capture, chosen: dict[str, list[int]]) -> None:
    size = difference_bytes(capture, chosen)
    if size > MAX_DIFFERENCE_BYTES:
        per_layer = size / sum(map(len, chosen.values()))
        fits = max(1, int(MAX_DIFFERENCE_BYTES // per_layer))
        raise ValueError(
            f"A − B would hold {size / 2**30:.1f} GiB of float32, over the {MAX_DIFFERENCE_BYTES / 2**30:.0f} GiB "
            f"compare keeps in memory; compare about {fits} layers at a time (compare(a, b, layers=[0, 1, ...])), "
            "or capture a shorter text"
        )


def _run_stack(capture: Capture, name: str, stack: str, layers: list[int]) -> StackRecord:
    """A run's own stack under its compared name: the run's layer records, not copied."""
    record = capture.stack(stack)
    numbers = capture.layer_numbers(stack)
    return StackRecord(
        run_stack_name(name, stack), record.query_side, record.key_side, [record.layers[i] for i in layers],
        capture.kv_head_of(stack), [numbers[i] for i in layers], record.sink,
    )  # fmt: skip


def _difference(a: StackRecord, b: StackRecord, name: str) -> tuple[StackRecord, dict[tuple[str, int, int], float]]:
    """The stack A − B, one head at a time, and each head's JS distance. Its layers keep A's queries, keys, bias and
    sinks: the neuron view of the difference shows run A's (docs/data-contract.md)."""
    layers, distances = [], {}
    for index, (layer_a, layer_b) in enumerate(zip(a.layers, b.layers)):
        difference = np.empty(layer_a.shape, dtype=np.float32)
        for head in range(layer_a.shape[0]):
            head_a = np.asarray(layer_a.head_attention(head), dtype=np.float32)
            head_b = np.asarray(layer_b.head_attention(head), dtype=np.float32)
            # A fully masked row (NaN in both) differs by nothing.
            np.nan_to_num(np.subtract(head_a, head_b, out=difference[head]), copy=False, nan=0.0)
            distances[(name, index, head)] = js_distance(head_a, head_b, has_sink=layer_a.sinks is not None)
        layers.append(
            LayerRecord(
                difference, layer_a.query, layer_a.key, layer_a.scale, layer_a.bias, layer_a.softcap, layer_a.sinks
            )
        )
    record = StackRecord(
        name, a.query_side, a.key_side, layers, a.kv_head_of, list(a.model_layer_numbers), a.sink,
        difference_of=(a.name, b.name),
    )  # fmt: skip
    return record, distances
