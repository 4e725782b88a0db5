"""Arrays <-> bytes: the one Python side of the data contract (docs/data-contract.md).

Everything that decides how attention, queries and keys look on the wire lives here, so
this module and `js/contract.ts` can be read side by side. The widget only calls these
functions; it never encodes numbers itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .attention_data import Capture

CONTRACT_VERSION = 1
"""`meta.version`; bump it together with docs/data-contract.md and js/contract.ts."""

ATTENTION_DTYPE = "uint8"
ATTENTION_SCALE = 255
"""One attention probability p travels as the byte round(p * 255); the browser reads byte / 255."""

FLOAT16_DTYPE = "float16"
_FLOAT16_LITTLE_ENDIAN = np.dtype("<f2")
"""Browsers read typed arrays in the host's byte order, which is little-endian everywhere they run."""

CHUNK_KEY_SEPARATOR = "/"

# Custom-message envelope: the browser asks with "request", Python answers with "response"
# carrying the same id, and the payload as the message's one binary buffer.
REQUEST_KIND = "request"
RESPONSE_KIND = "response"
WHAT_ATTENTION = "attention"


# -- attention chunks ---------------------------------------------------------------------
def chunk_key(stack: str, layer: int) -> str:
    """The `_chunks` key of one layer of one stack, e.g. "self/3"."""
    return f"{stack}{CHUNK_KEY_SEPARATOR}{layer}"


def parse_chunk_key(key: str) -> tuple[str, int]:
    """Inverse of `chunk_key`."""
    stack, _, layer = key.rpartition(CHUNK_KEY_SEPARATOR)
    return stack, int(layer)


def quantize_attention(attention: np.ndarray) -> bytes:
    """[heads, n_query, n_key] probabilities -> one byte per value, row-major."""
    if attention.ndim != 3:
        raise ValueError(f"an attention chunk is [heads, n_query, n_key]; got shape {attention.shape}")
    # Fully masked rows can hold NaN; they are drawn as "no attention" rather than garbage bytes.
    probabilities = np.nan_to_num(attention.astype(np.float32, copy=False), nan=0.0)
    scaled = np.rint(np.clip(probabilities, 0.0, 1.0) * ATTENTION_SCALE)
    return np.ascontiguousarray(scaled, dtype=np.uint8).tobytes()


def dequantize_attention(chunk: bytes | memoryview, shape: tuple[int, int, int]) -> np.ndarray:
    """Inverse of `quantize_attention`: bytes -> float32 [heads, n_query, n_key], off by at most 1/510."""
    values = np.frombuffer(chunk, dtype=np.uint8)
    if values.size != int(np.prod(shape)):
        raise ValueError(f"chunk holds {values.size} bytes, shape {tuple(shape)} needs {int(np.prod(shape))}")
    return values.reshape(shape).astype(np.float32) / ATTENTION_SCALE


def attention_chunk(capture: Capture, stack: str, layer: int) -> tuple[bytes, list[int]]:
    """The encoded chunk for one layer of one stack, with its [heads, n_query, n_key] shape."""
    attention = capture.layer_attention(layer, stack)
    return quantize_attention(attention), list(attention.shape)


def attention_bytes(capture: Capture) -> int:
    """What preloading every chunk of every stack costs, in bytes (one per attention value)."""
    total = 0
    for stack in capture.stacks:
        query_side, key_side = capture.stack_tokens(stack)
        total += capture.num_layers(stack) * capture.num_heads(stack) * len(query_side) * len(key_side)
    return total


def all_chunk_keys(capture: Capture) -> list[str]:
    return [chunk_key(stack, layer) for stack in capture.stacks for layer in range(capture.num_layers(stack))]


def attention_response(request_id: Any, stack: str, layer: int, shape: list[int]) -> dict[str, Any]:
    """The message that goes with an attention chunk sent on request."""
    return {
        "kind": RESPONSE_KIND,
        "id": request_id,
        "what": WHAT_ATTENTION,
        "stack": stack,
        "layer": layer,
        "dtype": ATTENTION_DTYPE,
        "shape": shape,
    }


def error_response(request_id: Any, message: str) -> dict[str, Any]:
    return {"kind": RESPONSE_KIND, "id": request_id, "error": message}


# -- queries and keys (neuron view) -------------------------------------------------------
def encode_float16(array: np.ndarray) -> tuple[bytes, dict[str, Any]]:
    """Any float array -> little-endian float16 bytes, with the `dtype` and `shape` the browser needs."""
    data = np.ascontiguousarray(array, dtype=_FLOAT16_LITTLE_ENDIAN).tobytes()
    return data, {"dtype": FLOAT16_DTYPE, "shape": list(array.shape)}


def decode_float16(data: bytes | memoryview, shape: list[int] | tuple[int, ...]) -> np.ndarray:
    """Inverse of `encode_float16`, as float32."""
    return np.frombuffer(data, dtype=_FLOAT16_LITTLE_ENDIAN).reshape(tuple(shape)).astype(np.float32)


# -- meta ---------------------------------------------------------------------------------
def build_meta(capture: Capture, *, chunks_complete: bool) -> dict[str, Any]:
    """The `meta` trait: tokens of each side, the stacks and their sizes, and the chunk encoding."""
    sides = {
        name: {
            "tokens": list(side.tokens),
            "special": [bool(flag) for flag in side.special],
            "segment_b_start": None if side.segment_b_start is None else int(side.segment_b_start),
        }
        for name, side in capture.sides.items()
    }
    stacks = []
    for name in capture.stacks:
        record = capture.stack(name)
        stacks.append(
            {
                "name": name,
                "query_side": record.query_side,
                "key_side": record.key_side,
                "layers": record.num_layers,
                "heads": record.num_heads,
                "kv_head_of": [int(h) for h in capture.kv_head_of(name)],
            }
        )
    return {
        "version": CONTRACT_VERSION,
        "sides": sides,
        "stacks": stacks,
        "encoding": {"dtype": ATTENTION_DTYPE, "scale": ATTENTION_SCALE},
        "chunks_complete": chunks_complete,
    }
