"""The one Python side of the data contract (docs/data-contract.md): names, messages and bytes.

Every synced trait name and its allowed values, every custom-message kind, the chunk keys and
how attention, queries and keys look on the wire live here, so this module and `js/contract/`
can be read side by side. The widget, serving, the export, the image requests and the command
line import these; none of them keeps its own list of names or encodes numbers itself.
"""

from __future__ import annotations

import json
import reprlib
from typing import Any

import numpy as np

from .capturing import Capture, Sink

CONTRACT_VERSION = 5
"""`meta.version`; bump it together with docs/data-contract.md and js/contract/."""

ATTENTION_DTYPE = "uint8"
ATTENTION_SCALE = 255
"""One attention probability p travels as the byte round(p * 255); the browser reads byte / 255."""

FLOAT16_DTYPE = "float16"
_FLOAT16_LITTLE_ENDIAN = np.dtype("<f2")
"""Browsers read typed arrays in the host's byte order, which is little-endian everywhere they run."""

CHUNK_KEY_SEPARATOR = "/"

# -- synced traits ------------------------------------------------------------------------
VIEWS = ("head", "model", "neuron", "matrix")
THEMES = ("auto", "light", "dark")
PAIR_FILTERS = ("all", "AA", "AB", "BA", "BB")
ALL_PAIRS = "all"
"""The pair filter that hides nothing: the only one a stack without a sentence pair on both sides allows."""

SELECTION_TRAITS = ("layer", "head", "heads", "token", "stack", "view", "theme", "pair_filter")
"""What the user selects, in either the page or Python; an exported page opens on these."""
META_TRAIT = "meta"
ATTENTION_TRAIT = "_chunks"
"""Attention chunks keyed by `head_key`, one head each, a byte per value."""
THUMBNAIL_TRAIT = "_thumbs"
"""Every head's thumbnail, keyed by `chunk_key`, one value per layer (model view)."""
QUERY_KEY_TRAIT = "_qk"
"""Query-key records (neuron view) keyed by `chunk_key`."""

BROWSER_WRITABLE = frozenset(SELECTION_TRAITS)
"""The only traits the browser may change; every other one (meta, chunks, the bundle, anywidget's names)
only Python writes, and the browser's copies are never taken back."""

# Custom-message envelope: the browser asks with "request", Python answers with "response"
# carrying the same id, and the payload as the message's one binary buffer.
REQUEST_KIND = "request"
RESPONSE_KIND = "response"
WHAT_ATTENTION = "attention"
WHAT_QUERY_KEY = "query_key"
WHAT_TOP_KEYS = "top_keys"

# Images (docs/data-contract.md, "Images"): Python asks with "image_request", every displayed
# view answers with "image" carrying the same id, and the file as the message's one buffer.
IMAGE_REQUEST_KIND = "image_request"
IMAGE_KIND = "image"
IMAGE_FORMATS = ("png", "svg")

# Exported pages (docs/data-contract.md, "Exported pages"): the state travels in one
# <script type="application/json"> carrying this attribute, each binary value compressed so.
STATE_ELEMENT_ATTRIBUTE = "data-attnwidget-export"
EXPORT_COMPRESSION = "deflate"
"""The `DecompressionStream` format of every binary value of a page: a zlib stream. Attention compresses about 8x."""


# -- attention chunks ---------------------------------------------------------------------
# One chunk is one head of one layer of one stack: a message never carries more than the browser shows, and a
# layer of 32 heads at 4096 tokens (512 MiB) never exists as one buffer on either side.
MAX_MESSAGE_BYTES = 64 * 2**20
"""No message to the browser, nor the widget's opening state, may be larger: JupyterLab stalls on bigger ones."""


def chunk_key(stack: str, layer: int) -> str:
    """The key of one layer of one stack, e.g. "self/3": of its thumbnails (`_thumbs`) and query-key record (`_qk`)."""
    return f"{stack}{CHUNK_KEY_SEPARATOR}{layer}"


def parse_chunk_key(key: str) -> tuple[str, int]:
    """Inverse of `chunk_key`."""
    stack, _, layer = key.rpartition(CHUNK_KEY_SEPARATOR)
    return stack, int(layer)


def head_key(stack: str, layer: int, head: int) -> str:
    """The `_chunks` key of one head of one layer of one stack, e.g. "self/3/5"."""
    return f"{chunk_key(stack, layer)}{CHUNK_KEY_SEPARATOR}{head}"


def parse_head_key(key: str) -> tuple[str, int, int]:
    """Inverse of `head_key`; the stack name is everything before the last two slashes."""
    layer_key, _, head = key.rpartition(CHUNK_KEY_SEPARATOR)
    return (*parse_chunk_key(layer_key), int(head))


def quantize_attention(attention: np.ndarray) -> bytes:
    """Probabilities of any shape -> one byte per value, row-major."""
    # Fully masked rows can hold NaN; they are drawn as "no attention" rather than garbage bytes.
    probabilities = np.nan_to_num(attention.astype(np.float32, copy=False), nan=0.0)
    scaled = np.rint(np.clip(probabilities, 0.0, 1.0) * ATTENTION_SCALE)
    return np.ascontiguousarray(scaled, dtype=np.uint8).tobytes()


def dequantize_attention(chunk: bytes | memoryview, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of `quantize_attention`: bytes -> float32 of `shape`, off by at most 1/510."""
    values = np.frombuffer(chunk, dtype=np.uint8)
    if values.size != int(np.prod(shape)):
        raise ValueError(f"chunk holds {values.size} bytes, shape {tuple(shape)} needs {int(np.prod(shape))}")
    return values.reshape(shape).astype(np.float32) / ATTENTION_SCALE


def head_chunk(capture: Capture, stack: str, layer: int, head: int) -> tuple[bytes, list[int]]:
    """The encoded chunk of one head, with its [n_query, n_key] shape; only this head's attention is computed.

    A layer with sinks (`meta.stacks[*].has_sinks`) appends what each query gives the head's sink, n_query more
    bytes: the weight that goes to no token of the text, shown as one more key column named by
    `meta.stacks[*].sink`."""
    attention = capture.head_attention(layer, head, stack)
    chunk = quantize_attention(attention)
    sinks = capture.sinks(layer, stack)
    if sinks is not None:
        # A row that sees no such key (-inf: CPM-Ant's rows it masks entirely) gives it nothing, whatever is left.
        unseen = np.isneginf(np.reshape(sinks[head], -1))
        chunk += quantize_attention(np.where(unseen, 0.0, sink_weights(attention)))
    return chunk, list(attention.shape)


def sink_weights(attention: np.ndarray) -> np.ndarray:
    """[..., n_query] weight each row gives the sink: what its keys' weights leave of 1."""
    return np.clip(1.0 - attention.astype(np.float64).sum(axis=-1), 0.0, 1.0)


def split_head_chunk(chunk: bytes | memoryview, shape: tuple[int, int], has_sinks: bool):
    """Inverse of `head_chunk`: float32 attention [n_query, n_key], and the sink weights [n_query] or None,
    each off by at most 1/510."""
    n_query, _ = shape
    cells = int(np.prod(shape))
    expected = cells + (n_query if has_sinks else 0)
    if len(chunk) != expected:
        raise ValueError(f"chunk holds {len(chunk)} bytes, shape {tuple(shape)} needs {expected}")
    attention = dequantize_attention(chunk[:cells], shape)
    sinks = dequantize_attention(chunk[cells:], (n_query,)) if has_sinks else None
    return attention, sinks


def head_bytes(capture: Capture, stack: str, layer: int) -> int:
    """What one head's chunk of this layer weighs: a byte per attention value, and per sink weight."""
    query_side, key_side = capture.stack_tokens(stack)
    return len(query_side) * (len(key_side) + (capture.sinks(layer, stack) is not None))


def attention_bytes(capture: Capture) -> int:
    """What preloading every head of every stack costs, in bytes."""
    return sum(
        capture.num_heads(stack) * head_bytes(capture, stack, layer)
        for stack, layer in map(parse_chunk_key, all_chunk_keys(capture))
    )


def all_chunk_keys(capture: Capture) -> list[str]:
    """Every layer of every stack, as `chunk_key`s."""
    return [chunk_key(stack, layer) for stack in capture.stacks for layer in range(capture.num_layers(stack))]


def all_head_keys(capture: Capture) -> list[str]:
    """Every head of every layer of every stack, as `head_key`s, in that order."""
    return [
        head_key(stack, layer, head)
        for stack in capture.stacks
        for layer in range(capture.num_layers(stack))
        for head in range(capture.num_heads(stack))
    ]


def attention_response(request_id: Any, stack: str, layer: int, head: int, shape: list[int]) -> dict[str, Any]:
    """The message that goes with an attention chunk sent on request."""
    return {
        "kind": RESPONSE_KIND,
        "id": request_id,
        "what": WHAT_ATTENTION,
        "stack": stack,
        "layer": layer,
        "head": head,
        "dtype": ATTENTION_DTYPE,
        "shape": shape,
    }


# -- top keys (head view) -------------------------------------------------------------------
# A head's strongest keys per query: what the head view draws of a long input, at n_query × k values instead of n².
TOP_KEYS_MAX = 64
"""The most keys per query a top-keys answer holds; a larger `k` asked for is cut to it (the answer says its k)."""
_TOP_KEY_INDEX_DTYPES = {"uint16": np.dtype("<u2"), "uint32": np.dtype("<u4")}


def top_key_index_dtype(n_key: int) -> str:
    """How key indices travel: uint16 while every index fits in it, else uint32."""
    return "uint16" if n_key <= 2**16 else "uint32"


def top_keys_count(asked: int, n_key: int) -> int:
    """The k an answer holds: what was asked for, at most `TOP_KEYS_MAX` and the head's number of keys."""
    return min(asked, TOP_KEYS_MAX, n_key)


def head_top_keys(capture: Capture, stack: str, layer: int, head: int, asked: int) -> tuple[bytes, list[int]]:
    """Per query, the k keys of one head with the most attention, strongest first: the key indices
    (`top_key_index_dtype`, little-endian, n_query × k) then their weights (uint8 like chunks, n_query × k),
    with the [n_query, k] shape. Ties keep torch.topk's order; sink weights are not among the keys."""
    import torch  # only on request; importing the widget never imports torch

    attention = capture.head_attention(layer, head, stack)
    n_key = attention.shape[1]
    k = top_keys_count(asked, n_key)
    # A fully masked row (NaN) has no strongest key: its weights come out 0, its indices whatever topk picks.
    values = torch.from_numpy(np.nan_to_num(np.asarray(attention, dtype=np.float32), nan=0.0))
    weights, indices = torch.topk(values, k, dim=-1, sorted=True)
    index_dtype = _TOP_KEY_INDEX_DTYPES[top_key_index_dtype(n_key)]
    data = np.ascontiguousarray(indices.numpy(), dtype=index_dtype).tobytes() + quantize_attention(weights.numpy())
    return data, [attention.shape[0], k]


def split_top_keys(data: bytes | memoryview, shape: tuple[int, int], n_key: int) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of `head_top_keys`: key indices [n_query, k] and float32 weights [n_query, k], off by at most 1/510."""
    index_dtype = _TOP_KEY_INDEX_DTYPES[top_key_index_dtype(n_key)]
    count = int(np.prod(shape))
    if len(data) != count * (index_dtype.itemsize + 1):
        needed = count * (index_dtype.itemsize + 1)
        raise ValueError(f"top keys hold {len(data)} bytes, shape {tuple(shape)} needs {needed}")
    indices = np.frombuffer(data, dtype=index_dtype, count=count).reshape(shape)
    return indices, dequantize_attention(memoryview(data)[count * index_dtype.itemsize :], shape)


def top_keys_response(
    request_id: Any, stack: str, layer: int, head: int, shape: list[int], n_key: int
) -> dict[str, Any]:
    """The message that goes with a head's top keys sent on request."""
    return {
        "kind": RESPONSE_KIND,
        "id": request_id,
        "what": WHAT_TOP_KEYS,
        "stack": stack,
        "layer": layer,
        "head": head,
        "k": shape[1],
        "index_dtype": top_key_index_dtype(n_key),
        "dtype": ATTENTION_DTYPE,
        "shape": shape,
    }


# -- thumbnails (model view) ----------------------------------------------------------------
THUMBNAIL_SIZE = 64
"""A thumbnail is at most this many rows and columns: every head of every layer goes up front in them."""


def thumbnail_shape(n_query: int, n_key: int) -> tuple[int, int]:
    return min(n_query, THUMBNAIL_SIZE), min(n_key, THUMBNAIL_SIZE)


def _bin_starts(count: int, bins: int) -> np.ndarray:
    # Row i falls in bin floor(i * bins / count); a bin's first row is ceil(b * count / bins).
    return -(-np.arange(bins) * count // bins)


def thumbnail(attention: np.ndarray) -> np.ndarray:
    """One head's [n_query, n_key] attention max-pooled to `thumbnail_shape`, as uint8 bytes: each pixel keeps the
    strongest value of its block, so a one-cell diagonal or a single column stays visible. NaN (a fully masked row)
    counts as nothing."""
    n_query, n_key = attention.shape
    rows, columns = thumbnail_shape(n_query, n_key)
    # Blocks of whole rows first, each a contiguous slice (reduceat down the rows of 4096 x 4096 is 20 times slower);
    # then the columns of the small result.
    bounds = [*_bin_starts(n_query, rows), n_query]
    pooled = np.stack([np.fmax.reduce(attention[start:stop], axis=0) for start, stop in zip(bounds, bounds[1:])])
    pooled = np.fmax.reduceat(pooled, _bin_starts(n_key, columns), axis=1)
    return np.frombuffer(quantize_attention(pooled), dtype=np.uint8).reshape(rows, columns)


def layer_thumbnails(capture: Capture, stack: str, layer: int) -> bytes:
    """The `_thumbs` value of one layer: every head's thumbnail, head then row then column, one head computed at a
    time."""
    return b"".join(
        thumbnail(capture.head_attention(layer, head, stack)).tobytes() for head in range(capture.num_heads(stack))
    )


def all_thumbnails(capture: Capture) -> dict[str, bytes]:
    """Every layer's thumbnails keyed by `chunk_key`: the `_thumbs` trait."""
    return {key: layer_thumbnails(capture, *parse_chunk_key(key)) for key in all_chunk_keys(capture)}


def error_response(request_id: Any, message: str) -> dict[str, Any]:
    return {"kind": RESPONSE_KIND, "id": request_id, "error": message}


_QUOTE = reprlib.Repr()  # keyword arguments to Repr() need Python 3.12
_QUOTE.maxlevel, _QUOTE.maxlist, _QUOTE.maxdict, _QUOTE.maxstring, _QUOTE.maxother = 3, 10, 10, 80, 80
_TEXT_LIMIT = 300


def quoted(value: Any) -> str:
    """A value the browser sent, as logs and error replies quote it: short whatever its size, safe at any nesting.

    The browser may send anything; its repr could run to megabytes per message, or recurse too deep.
    """
    return clipped(_QUOTE.repr(value))


def clipped(text: str) -> str:
    """`text` cut to a few hundred characters (an error message may quote a huge value whole)."""
    return text if len(text) <= _TEXT_LIMIT else f"{text[:_TEXT_LIMIT]}… ({len(text):,} characters)"



# -- queries and keys (neuron view) -------------------------------------------------------
def encode_float16(array: np.ndarray) -> tuple[bytes, dict[str, Any]]:
    """Any float array -> little-endian float16 bytes, with the `dtype` and `shape` the browser needs."""
    data = np.ascontiguousarray(array, dtype=_FLOAT16_LITTLE_ENDIAN).tobytes()
    return data, {"dtype": FLOAT16_DTYPE, "shape": list(array.shape)}


def decode_float16(data: bytes | memoryview, shape: list[int] | tuple[int, ...]) -> np.ndarray:
    """Inverse of `encode_float16`, as float32."""
    return np.frombuffer(data, dtype=_FLOAT16_LITTLE_ENDIAN).reshape(tuple(shape)).astype(np.float32)


# One layer of one stack for the neuron view travels as one "query-key record": a little-endian
# uint32 header length, a UTF-8 JSON header, then the arrays, each starting at a multiple of 8
# bytes so the browser can view them as typed arrays (offsets count from the end of the padded
# header). Queries and keys are float16: they are drawn as colour bands. Scores and bias are
# float32, so the scores and softmax the browser shows equal the capture's to the digits shown;
# a browser summing float16 products would be off in the third digit for scores around 20.
QUERY_KEY_ALIGN = 8
_FLOAT32_LITTLE_ENDIAN = np.dtype("<f4")
_HEADER_LENGTH = np.dtype("<u4")


def has_query_key(capture: Capture) -> bool:
    """Whether every layer of every stack holds queries, keys and their scale (not so for `from_attention`)."""
    return all(
        layer.query is not None and layer.key is not None and layer.scale is not None
        for stack in capture.stacks
        for layer in capture.stack(stack).layers
    )


def query_key_arrays(capture: Capture, stack: str, layer: int) -> dict[str, np.ndarray]:
    """The arrays of one record: query, key (per key/value head), scores = q·k × scale, bias if any.

    Scores are before soft-capping: the header's `softcap` says how to cap them, so the browser
    can show the capped score as a step of its own. `sinks` is the logit of one more key that is no token,
    [heads] (GPT-OSS's learned sinks) or [heads, n_query] (Inkling2's, or the log-sum-exp of keys outside the text)."""
    query, key = capture.query_key(layer, stack)  # raises the capture's own errors for bad input
    record = capture.stack(stack).layers[layer]
    scores = np.einsum("hqd,hkd->hqk", query, key) * np.float32(capture.layer_scale(layer, stack))
    arrays = {
        "query": query.astype(_FLOAT16_LITTLE_ENDIAN),
        "key": np.asarray(record.key).astype(_FLOAT16_LITTLE_ENDIAN),
        "scores": scores.astype(_FLOAT32_LITTLE_ENDIAN),
    }
    bias = capture.bias(layer, stack)
    if bias is not None:
        bias = np.asarray(bias, dtype=_FLOAT32_LITTLE_ENDIAN)
        bias = bias.reshape((1,) * (3 - bias.ndim) + bias.shape)
        np.broadcast_shapes(bias.shape, scores.shape)  # a bias that does not fit is a bug upstream
        arrays["bias"] = bias
    sinks = capture.sinks(layer, stack)
    if sinks is not None:
        arrays["sinks"] = np.asarray(sinks, dtype=_FLOAT32_LITTLE_ENDIAN)
    return arrays


def query_key_record(capture: Capture, stack: str, layer: int) -> bytes:
    """One layer of one stack as a query-key record (see above and docs/data-contract.md)."""
    arrays = query_key_arrays(capture, stack, layer)
    layout, offset = [], 0
    for name, array in arrays.items():
        layout.append({"name": name, "dtype": array.dtype.name, "shape": list(array.shape), "offset": offset})
        offset += _aligned(array.nbytes)
    header = {"scale": capture.layer_scale(layer, stack), "softcap": capture.softcap(layer, stack), "arrays": layout}
    header_bytes = json.dumps(header).encode("utf-8")
    start = _aligned(_HEADER_LENGTH.itemsize + len(header_bytes))
    parts = [np.array(len(header_bytes), dtype=_HEADER_LENGTH).tobytes(), header_bytes]
    parts.append(bytes(start - _HEADER_LENGTH.itemsize - len(header_bytes)))
    for array in arrays.values():
        data = np.ascontiguousarray(array).tobytes()
        parts += [data, bytes(_aligned(len(data)) - len(data))]
    return b"".join(parts)


def decode_query_key_record(record: bytes | memoryview) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Inverse of `query_key_record`: (header, arrays as float32)."""
    data = memoryview(record).cast("B")
    length = int(np.frombuffer(data[: _HEADER_LENGTH.itemsize], dtype=_HEADER_LENGTH)[0])
    header = json.loads(bytes(data[_HEADER_LENGTH.itemsize : _HEADER_LENGTH.itemsize + length]))
    start = _aligned(_HEADER_LENGTH.itemsize + length)
    arrays = {}
    for entry in header["arrays"]:
        dtype = np.dtype(entry["dtype"]).newbyteorder("<")
        count = int(np.prod(entry["shape"]))
        begin = start + entry["offset"]
        values = np.frombuffer(data[begin : begin + count * dtype.itemsize], dtype=dtype)
        arrays[entry["name"]] = values.reshape(entry["shape"]).astype(np.float32)
    return header, arrays


def query_key_bytes(capture: Capture, stack: str, layer: int) -> int:
    """About what one record weighs, without building it: float16 q and k, float32 scores and bias."""
    record = capture.stack(stack).layers[layer]
    bias = 0 if record.bias is None else np.size(record.bias)
    sinks = 0 if record.sinks is None else np.size(record.sinks)
    return 2 * (np.size(record.query) + np.size(record.key)) + 4 * (int(np.prod(record.shape)) + bias + sinks)


def all_query_key_bytes(capture: Capture) -> int:
    return sum(query_key_bytes(capture, *parse_chunk_key(key)) for key in all_chunk_keys(capture))


def all_query_key_records(capture: Capture) -> dict[str, bytes]:
    """Every layer's record keyed like the attention chunks: the `_qk` trait of a preloaded widget."""
    return {key: query_key_record(capture, *parse_chunk_key(key)) for key in all_chunk_keys(capture)}


def query_key_response(request_id: Any, stack: str, layer: int) -> dict[str, Any]:
    """The message that goes with a query-key record sent on request."""
    return {"kind": RESPONSE_KIND, "id": request_id, "what": WHAT_QUERY_KEY, "stack": stack, "layer": layer}


def _aligned(nbytes: int) -> int:
    return -(-nbytes // QUERY_KEY_ALIGN) * QUERY_KEY_ALIGN


# -- meta ---------------------------------------------------------------------------------
def _sink_meta(sink: Sink | None) -> dict[str, str] | None:
    """What a stack's sink stands for, as the page names it (`meta.stacks[*].sink`); None without sinks."""
    return None if sink is None else {"label": sink.label, "stands_for": sink.stands_for}


def build_meta(capture: Capture, *, chunks_complete: bool, query_key_complete: bool = False) -> dict[str, Any]:
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
                "layer_numbers": capture.layer_numbers(name),
                "has_sinks": [capture.sinks(layer, name) is not None for layer in range(record.num_layers)],
                "sink": _sink_meta(capture.sink(name)),
            }
        )
    return {
        "version": CONTRACT_VERSION,
        "sides": sides,
        "stacks": stacks,
        "encoding": {"dtype": ATTENTION_DTYPE, "scale": ATTENTION_SCALE},
        "thumbnails": {"size": THUMBNAIL_SIZE, "pooling": "max"},
        "chunks_complete": chunks_complete,
        "query_key": {"available": has_query_key(capture), "complete": query_key_complete},
    }
