"""BertViz's layer and head arguments in terms of our widget.

BertViz numbers layers and heads as the model does, also when `include_layers` or
`include_heads` leave some out. The widget shows a smaller capture holding only the
included ones, so its layer i is the i-th included layer (in ascending order) and its
head j the j-th included head. `layer` and `heads` are given in the model's numbers
and translated here; the meta has no field for the original numbers yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..capturing import Capture, LayerRecord, StackRecord


@dataclass(frozen=True)
class Shown:
    """The model's layers and heads the widget shows (None: all); widget layer i is `layers[i]`."""

    layers: list[int] | None
    heads: list[int] | None
    layer_count: int
    """Layers (heads below) in every stack; what None stands for."""
    head_count: int

    def layer_position(self, layer: object) -> int:
        """The widget layer of model layer `layer` (None: the first shown)."""
        if layer is None:
            return 0
        number = _index("layer", layer)
        return _position("layer", number, self.layers, self.layer_count, "layers", "include_layers")

    def head_position(self, head: object) -> int:
        """The widget head of model head `head` (None: the first shown)."""
        if head is None:
            return 0
        return _position("head", _index("head", head), self.heads, self.head_count, "heads", "include_heads")

    def head_positions(self, heads: object) -> list[int] | None:
        """Widget heads of the model heads in `heads` (None: all shown heads)."""
        if heads is None:
            return None
        numbers = _index_list("heads", heads)
        positions = {_position("heads", head, self.heads, self.head_count, "heads", "include_heads") for head in numbers}
        return sorted(positions)


def shown(capture: Capture, include_layers: object, include_heads: object) -> Shown:
    """Check `include_layers` and `include_heads` against every stack of `capture`."""
    layer_count = min(capture.num_layers(stack) for stack in capture.stacks)
    head_count = min(capture.num_heads(stack) for stack in capture.stacks)
    return Shown(
        layers=_included("include_layers", include_layers, layer_count, "layers", capture),
        heads=_included("include_heads", include_heads, head_count, "heads", capture),
        layer_count=layer_count,
        head_count=head_count,
    )


def restricted(capture: Capture, scope: Shown) -> Capture:
    """`capture` with only the shown layers and heads (attention only: it was built from attention tensors)."""
    if scope.layers is None and scope.heads is None:
        return capture
    stacks = []
    for name in capture.stacks:
        record = capture.stack(name)
        layers = range(record.num_layers) if scope.layers is None else scope.layers
        heads = slice(None) if scope.heads is None else scope.heads
        picked = [LayerRecord(attention=record.layers[layer].attention[heads]) for layer in layers]
        stacks.append(StackRecord(name, record.query_side, record.key_side, picked))
    return Capture(list(capture.sides.values()), stacks)


def _position(name: str, number: int, included: list[int] | None, count: int, unit: str, include_name: str) -> int:
    if included is None:
        if number >= count:
            raise ValueError(f"{name}: {number} is out of range; there are {count} {unit}, numbered 0..{count - 1}")
        return number
    if number not in included:
        raise ValueError(f"{name}: {number} is not shown; {include_name}={included} shows only those {unit}")
    return included.index(number)


def _included(name: str, value: object, count: int, unit: str, capture: Capture) -> list[int] | None:
    if value is None:
        return None
    numbers = _index_list(name, value)
    if not numbers:
        raise ValueError(f"{name} is empty; pass the {unit} to show, or None for all of them")
    out_of_range = [number for number in numbers if number >= count]
    if out_of_range:
        raise ValueError(
            f"{name}={list(numbers)} names {unit} {out_of_range} that do not exist: the attention has {count} "
            f"{unit}{_per_stack(capture, unit)}, numbered 0..{count - 1}"
        )
    return sorted(numbers)


def _per_stack(capture: Capture, unit: str) -> str:
    if len(capture.stacks) == 1:
        return ""
    counts = {name: capture.num_layers(name) if unit == "layers" else capture.num_heads(name) for name in capture.stacks}
    return f" in every stack ({', '.join(f'{name}: {count}' for name, count in counts.items())})"


def _index_list(name: str, value: object) -> list[int]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, range, np.ndarray)):
        raise TypeError(f"{name} must be a list of 0-based indices, e.g. [0, 2], not {type(value).__name__}")
    numbers = [_index(f"{name}[{position}]", item) for position, item in enumerate(value)]
    repeated = sorted({number for number in numbers if numbers.count(number) > 1})
    if repeated:
        raise ValueError(f"{name}={numbers} repeats {repeated}; name each index once")
    return numbers


def _index(name: str, value: Any) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a 0-based integer index, not {type(value).__name__} {value!r}")
    if value < 0:
        raise ValueError(f"{name}={value} is negative; indices are 0-based and count from the first")
    return int(value)
