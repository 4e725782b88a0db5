"""What the widget sends the browser besides its traits: the data that goes up front, and answers to requests.

Every head's thumbnail goes up front. A capture whose attention fits the preload budget opens with
every head; a larger one with the head on screen (when it fits the budget itself), and the browser
asks for the others, one head per message, as it shows them (the head view asks only for each query's
strongest keys of a head, `top_keys`); the matrix view asks for a head of more than 2048 tokens as tiles, the
region on screen pooled to its pixels. Queries and keys (neuron view) go the same way under their own budget:
every head's record, else the focused head's, else none. The requests and answers follow
docs/data-contract.md; the bytes come from `wire.py`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from . import wire
from .capturing import Capture

DEFAULT_PRELOAD_BYTES = 4 * 2**20
"""Attention up to this size (one byte per value) is sent with the widget; larger captures load heads on request."""
DEFAULT_PRELOAD_QK_BYTES = 2 * 2**20
"""Queries and keys of every head (neuron view) are sent with the widget when they fit in this size; otherwise the
focused head's when it fits by itself, and the neuron view asks for the head it shows. MiniLM's 72 heads fit up
to about 110 tokens."""

log = logging.getLogger(__name__)


# -- up front ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Preload:
    """Whether all attention, and all query-key records, of a capture go up front."""

    all_attention: bool
    all_query_key: bool
    preload_bytes: int
    preload_qk_bytes: int

    @classmethod
    def within(cls, capture: Capture, preload_bytes: int, preload_qk_bytes: int) -> Preload:
        """What fits the two budgets, in bytes."""
        return cls(
            all_attention=wire.attention_bytes(capture) <= preload_bytes,
            all_query_key=wire.has_query_key(capture) and wire.all_query_key_bytes(capture) <= preload_qk_bytes,
            preload_bytes=preload_bytes,
            preload_qk_bytes=preload_qk_bytes,
        )

    def attention_chunks(self, capture: Capture, stack: str, layer: int, head: int) -> dict[str, bytes]:
        """Every head, or the one on screen when it fits the budget by itself (else the browser asks for it)."""
        if self.all_attention:
            keys = wire.all_head_keys(capture)
        elif wire.head_bytes(capture, stack, layer) <= self.preload_bytes:
            keys = [wire.head_key(stack, layer, head)]
        else:
            keys = []
        return {key: wire.head_chunk(capture, *wire.parse_head_key(key))[0] for key in keys}

    def query_key_records(self, capture: Capture, stack: str, layer: int, head: int) -> dict[str, bytes]:
        """Every head's record, or the focused one's when it fits the budget by itself (else the browser asks)."""
        if self.all_query_key:
            return wire.all_query_key_records(capture)
        if (
            not wire.has_query_key(capture)
            or stack not in capture.recorded_stacks
            or wire.query_key_bytes(capture, stack, layer) > self.preload_qk_bytes
        ):
            return {}
        return {wire.head_key(stack, layer, head): wire.query_key_record(capture, stack, layer, head)}


# -- on request -------------------------------------------------------------------------------
class BadRequest(ValueError):
    """A browser request this widget cannot answer; its message goes back in the error reply."""


def answer_request(capture: Capture, content: Any) -> tuple[dict[str, Any], list[bytes]] | None:
    """The reply (message, buffers) to a `{"kind": "request", ...}` message; None for other custom messages.

    Never raises: a request that cannot be answered gets an error reply, so the browser never waits forever.
    """
    if not isinstance(content, dict) or content.get("kind") != wire.REQUEST_KIND:
        return None
    request_id = content.get("id")
    try:
        message, buffers = _serve(capture, content)
        size = sum(len(buffer) for buffer in buffers)
        if size > wire.MAX_MESSAGE_BYTES:
            raise BadRequest(
                f"the answer would be {size:,} bytes, more than the {wire.MAX_MESSAGE_BYTES:,} one message may carry "
                "without stalling JupyterLab; capture a shorter text (fewer tokens) to see it"
            )
        return message, buffers
    except BadRequest as error:
        log.warning("bad request from the browser %s: %s", wire.quoted(content), error)
        return wire.error_response(request_id, str(error)), []
    except Exception as error:  # a bug; the browser still gets an answer instead of waiting forever
        log.exception("failed to answer %s", wire.quoted(content))
        return wire.error_response(request_id, wire.clipped(f"internal error: {error}")), []


def _serve(capture: Capture, request: dict[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
    what = request.get("what")
    known = (wire.WHAT_ATTENTION, wire.WHAT_QUERY_KEY, wire.WHAT_TILE, wire.WHAT_TOP_KEYS)
    if what not in known:
        raise BadRequest(f"unknown request what={wire.quoted(what)}; expected one of {', '.join(map(repr, known))}")
    stack, layer = request.get("stack"), request.get("layer")
    if stack not in capture.stacks:
        raise BadRequest(f"no stack {wire.quoted(stack)}; this widget has {list(capture.stacks)}")
    _check_index("layer", layer, capture.num_layers(stack), stack)
    head = request.get("head")
    _check_index("head", head, capture.num_heads(stack), stack)
    if what == wire.WHAT_QUERY_KEY:
        derivation = capture.stack(stack).derivation
        if derivation is not None:
            raise BadRequest(
                f"stack {stack!r} is computed from stack {derivation.base!r} and has no queries or keys; the neuron "
                f"view shows stack {derivation.base!r}"
            )
        if not wire.has_query_key(capture):
            raise BadRequest(
                "this widget holds no queries or keys (it was built from attention tensors alone); "
                "create it from the model, AttentionWidget(model, text), to see the neuron view"
            )
        record = wire.query_key_record(capture, stack, layer, head)
        return wire.query_key_response(request.get("id"), stack, layer, head), [record]
    if what == wire.WHAT_TILE:
        return _serve_tile(capture, request, stack, layer, head)
    if what == wire.WHAT_TOP_KEYS:
        return _top_keys(capture, request, stack, layer, head)
    chunk, shape = wire.head_chunk(capture, stack, layer, head)
    return wire.attention_response(request.get("id"), stack, layer, head, shape), [chunk]


def _serve_tile(capture: Capture, request: dict[str, Any], stack: str, layer: int, head: int):
    """A region of one head pooled to the size asked for (docs/data-contract.md, "Tiles")."""
    n_query, n_key = (len(side) for side in capture.stack_tokens(stack))
    q0, q1 = _span(request, "q0", "q1", n_query, "query")
    k0, k1 = _span(request, "k0", "k1", n_key, "key")
    rows, columns, pooling = request.get("rows"), request.get("columns"), request.get("pooling")
    for name, value, span in (("rows", rows, q1 - q0), ("columns", columns, k1 - k0)):
        most = min(span, wire.MAX_TILE_SIDE)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
            raise BadRequest(
                f"{name} must be an integer in 1..{most} (the region's {span} cells, at most {wire.MAX_TILE_SIDE} "
                f"a tile); got {wire.quoted(value)}; ask for a smaller tile or a smaller region"
            )
    if pooling not in wire.TILE_POOLINGS:
        raise BadRequest(f"pooling must be one of {list(wire.TILE_POOLINGS)}; got {wire.quoted(pooling)}")
    tile = wire.Tile(stack, layer, head, q0, q1, k0, k1, rows, columns, pooling)
    return wire.tile_response(request.get("id"), tile), [wire.head_tile(capture, tile)]


def _span(request: dict[str, Any], start_name: str, stop_name: str, count: int, side: str) -> tuple[int, int]:
    start, stop = request.get(start_name), request.get(stop_name)
    whole = all(isinstance(value, int) and not isinstance(value, bool) for value in (start, stop))
    if not whole or not 0 <= start < stop <= count:
        raise BadRequest(
            f"{start_name} and {stop_name} must be integers with 0 <= {start_name} < {stop_name} <= {count} (the "
            f"{side} tokens); got {wire.quoted(start)} and {wire.quoted(stop)}"
        )
    return start, stop


def _top_keys(capture: Capture, request: dict[str, Any], stack: str, layer: int, head: int):
    k = request.get("k")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise BadRequest(
            f"k must be a positive integer (keys per query, at most {wire.TOP_KEYS_MAX} are sent); got {wire.quoted(k)}"
        )
    data, shape = wire.head_top_keys(capture, stack, layer, head, k)
    n_key = len(capture.stack_tokens(stack)[1])
    return wire.top_keys_response(request.get("id"), stack, layer, head, shape, n_key), [data]


def _check_index(name: str, value: Any, count: int, stack: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < count:
        raise BadRequest(f"{name} must be an integer in 0..{count - 1} for stack {stack!r}; got {wire.quoted(value)}")
