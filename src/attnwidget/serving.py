"""What the widget sends the browser besides its traits: the layers that go up front, and answers to requests.

A capture whose attention fits the preload budget opens with every layer; a larger one opens
with the layer on screen, and the browser asks for the others as it needs them. Queries and
keys (neuron view) go up front all or nothing. The requests and answers follow
docs/data-contract.md; the bytes come from `wire.py`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from . import wire
from .capturing import Capture

DEFAULT_PRELOAD_BYTES = 64 * 2**20
"""Attention up to this size (one byte per value) is sent with the widget; larger captures load layers on request."""
DEFAULT_PRELOAD_QK_BYTES = 2 * 2**20
"""Queries, keys and scores of every layer (neuron view) are sent with the widget when they fit in this size.
Otherwise the neuron view asks for the layer it shows; a short sentence fits, and keeps working in exported pages."""

log = logging.getLogger(__name__)


# -- up front ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Preload:
    """Whether all attention, and all query-key records, of a capture go up front."""

    all_attention: bool
    all_query_key: bool

    @classmethod
    def within(cls, capture: Capture, preload_bytes: int, preload_qk_bytes: int) -> Preload:
        """What fits the two budgets, in bytes."""
        return cls(
            all_attention=wire.attention_bytes(capture) <= preload_bytes,
            all_query_key=wire.has_query_key(capture) and wire.all_query_key_bytes(capture) <= preload_qk_bytes,
        )

    def attention_chunks(self, capture: Capture, stack: str, layer: int) -> dict[str, bytes]:
        """Every chunk, or only the layer on screen: no view can open without the one it shows."""
        keys = wire.all_chunk_keys(capture) if self.all_attention else [wire.chunk_key(stack, layer)]
        return {key: wire.attention_chunk(capture, *wire.parse_chunk_key(key))[0] for key in keys}

    def query_key_records(self, capture: Capture) -> dict[str, bytes]:
        # All or nothing: unlike attention, the views need no layer of these to open, and a live
        # kernel answers the neuron view's request at once.
        return wire.all_query_key_records(capture) if self.all_query_key else {}


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
        return _serve(capture, content)
    except BadRequest as error:
        log.warning("bad request from the browser %s: %s", wire.quoted(content), error)
        return wire.error_response(request_id, str(error)), []
    except Exception as error:  # a bug; the browser still gets an answer instead of waiting forever
        log.exception("failed to answer %s", wire.quoted(content))
        return wire.error_response(request_id, wire.clipped(f"internal error: {error}")), []


def _serve(capture: Capture, request: dict[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
    what = request.get("what")
    if what not in (wire.WHAT_ATTENTION, wire.WHAT_QUERY_KEY):
        raise BadRequest(
            f"unknown request what={wire.quoted(what)}; expected {wire.WHAT_ATTENTION!r} or {wire.WHAT_QUERY_KEY!r}"
        )
    stack, layer = request.get("stack"), request.get("layer")
    if stack not in capture.stacks:
        raise BadRequest(f"no stack {wire.quoted(stack)}; this widget has {list(capture.stacks)}")
    count = capture.num_layers(stack)
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < count:
        raise BadRequest(f"layer must be an integer in 0..{count - 1} for stack {stack!r}; got {wire.quoted(layer)}")
    if what == wire.WHAT_QUERY_KEY:
        if not wire.has_query_key(capture):
            raise BadRequest(
                "this widget holds no queries or keys (it was built from attention tensors alone); "
                "create it from the model, AttentionWidget(model, text), to see the neuron view"
            )
        return wire.query_key_response(request.get("id"), stack, layer), [wire.query_key_record(capture, stack, layer)]
    chunk, shape = wire.attention_chunk(capture, stack, layer)
    return wire.attention_response(request.get("id"), stack, layer, shape), [chunk]
