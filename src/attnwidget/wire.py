"""The one Python side of the data contract (docs/data-contract.md): names, messages and bytes.

Every synced trait name and its allowed values, every custom-message kind, the chunk keys and
how attention, queries and keys look on the wire live here, so this module and `js/contract/`
can be read side by side. The widget, serving, the export, the image requests and the command
line import these; none of them keeps its own list of names or encodes numbers itself.
"""

from __future__ import annotations

import json
import math
import reprlib
import weakref
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping

import numpy as np

from .analysis.scores import SCORE_INFO
from .capturing import Capture, Derivation, Generation, Sink, TokenSide, rows_per_chunk

CONTRACT_VERSION = 7
"""`meta.version`; bump it together with docs/data-contract.md and js/contract/."""

ATTENTION_DTYPE = "uint8"
ATTENTION_SCALE = 255
"""One attention probability p travels as the byte round(p * 255); the browser reads byte / 255."""

FLOAT16_DTYPE = "float16"
_FLOAT16_LITTLE_ENDIAN = np.dtype("<f2")
_FLOAT32_LITTLE_ENDIAN = np.dtype("<f4")
"""Browsers read typed arrays in the host's byte order, which is little-endian everywhere they run."""

CHUNK_KEY_SEPARATOR = "/"

# -- synced traits ------------------------------------------------------------------------
VIEWS = ("head", "model", "neuron", "matrix")
THEMES = ("auto", "light", "dark")
PAIR_FILTERS = ("all", "AA", "AB", "BA", "BB")
ALL_PAIRS = "all"
"""The pair filter that hides nothing: the only one a stack without a sentence pair on both sides allows."""

SELECTION_TRAITS = ("layer", "head", "heads", "token", "stack", "view", "theme", "pair_filter", "step", "score")
"""What the user selects, in either the page or Python; an exported page opens on these."""
META_TRAIT = "meta"
ATTENTION_TRAIT = "_chunks"
"""Attention chunks keyed by `head_key`, one head each, a byte per value."""
THUMBNAIL_TRAIT = "_thumbs"
"""Every head's thumbnail, keyed by `chunk_key`, one value per layer (model view)."""
QUERY_KEY_TRAIT = "_qk"
"""Query-key records (neuron view) keyed by `head_key`, one head each."""

BROWSER_WRITABLE = frozenset(SELECTION_TRAITS)
"""The only traits the browser may change; every other one (meta, chunks, the bundle, anywidget's names)
only Python writes, and the browser's copies are never taken back."""

# Custom-message envelope: the browser asks with "request", Python answers with "response"
# carrying the same id, and the payload as the message's one binary buffer.
REQUEST_KIND = "request"
RESPONSE_KIND = "response"
WHAT_ATTENTION = "attention"
WHAT_QUERY_KEY = "query_key"
WHAT_TILE = "tile"
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
    """The key of one layer of one stack, e.g. "self/3": of its thumbnails (`_thumbs`)."""
    return f"{stack}{CHUNK_KEY_SEPARATOR}{layer}"


def parse_chunk_key(key: str) -> tuple[str, int]:
    """Inverse of `chunk_key`."""
    stack, _, layer = key.rpartition(CHUNK_KEY_SEPARATOR)
    return stack, int(layer)


def head_key(stack: str, layer: int, head: int) -> str:
    """The key of one head of one layer of one stack, e.g. "self/3/5": of its attention chunk (`_chunks`) and its
    query-key record (`_qk`)."""
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


def all_chunk_keys(capture: Capture, stacks: tuple[str, ...] | None = None) -> list[str]:
    """Every layer of every stack (or of `stacks`), as `chunk_key`s."""
    names = capture.stacks if stacks is None else stacks
    return [chunk_key(stack, layer) for stack in names for layer in range(capture.num_layers(stack))]


def all_head_keys(capture: Capture, stacks: tuple[str, ...] | None = None) -> list[str]:
    """Every head of every layer of every stack (or of `stacks`), as `head_key`s, in that order."""
    return [
        head_key(stack, layer, head)
        for stack in (capture.stacks if stacks is None else stacks)
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


def _pool(block: np.ndarray, row_bounds: np.ndarray, column_starts: np.ndarray, pooling: str) -> np.ndarray:
    """Rows [row_bounds[i], row_bounds[i + 1]) of `block` by the columns from each of `column_starts` on, each block
    reduced to its maximum or mean, as float32 [len(row_bounds) - 1, len(column_starts)]. NaN (a fully masked row)
    counts as nothing in a maximum; a block to average must hold none (`head_tile` zeroes them)."""
    # Blocks of whole rows first, each a contiguous slice (reduceat down the rows of 4096 x 4096 is 20 times slower);
    # then the columns of the small result.
    if pooling == "max":
        rows = [np.fmax.reduce(block[start:stop], axis=0) for start, stop in zip(row_bounds, row_bounds[1:])]
        return np.fmax.reduceat(np.stack(rows), column_starts, axis=1).astype(np.float32, copy=False)
    # Rows summed in float32 (pairwise, so a bin of thousands of rows stays within 1e-6), then the columns in float64.
    rows = [np.add.reduce(block[start:stop], axis=0) for start, stop in zip(row_bounds, row_bounds[1:])]
    sums = np.add.reduceat(np.stack(rows).astype(np.float64), column_starts, axis=1)
    counts = np.outer(np.diff(row_bounds), np.diff([*column_starts, block.shape[1]]))
    return (sums / counts).astype(np.float32)


def thumbnail(attention: np.ndarray) -> np.ndarray:
    """One head's [n_query, n_key] attention max-pooled to `thumbnail_shape`, as uint8 bytes: each pixel keeps the
    strongest value of its block, so a one-cell diagonal or a single column stays visible."""
    n_query, n_key = attention.shape
    rows, columns = thumbnail_shape(n_query, n_key)
    pooled = _pool(attention, np.array([*_bin_starts(n_query, rows), n_query]), _bin_starts(n_key, columns), "max")
    return np.frombuffer(quantize_attention(pooled), dtype=np.uint8).reshape(rows, columns)


def layer_thumbnails(capture: Capture, stack: str, layer: int) -> bytes:
    """The `_thumbs` value of one layer: every head's thumbnail, head then row then column, one head computed at a
    time."""
    return b"".join(
        thumbnail(capture.head_attention(layer, head, stack)).tobytes() for head in range(capture.num_heads(stack))
    )


def all_thumbnails(capture: Capture, layer_done: Callable[[int], None] | None = None) -> dict[str, bytes]:
    """Every layer's thumbnails keyed by `chunk_key`: the `_thumbs` trait. `layer_done(scores)` is called after each
    layer with the number of attention values pooled (a progress bar's)."""
    thumbnails = {}
    for key in all_chunk_keys(capture):
        stack, layer = parse_chunk_key(key)
        thumbnails[key] = layer_thumbnails(capture, stack, layer)
        if layer_done is not None:
            query_side, key_side = capture.stack_tokens(stack)
            layer_done(capture.num_heads(stack) * len(query_side.tokens) * len(key_side.tokens))
    return thumbnails


# -- tiles (matrix view) --------------------------------------------------------------------
# A tile is a region [q0, q1) x [k0, k1) of one head pooled to at most `rows` x `columns`, bins as the thumbnails'.
# Its values are float32, not bytes: at 4096 tokens most weights are near 1/4096, below the byte's 1/255 step, and a
# log scale needs them. Layout (little-endian float32): the region's peak and its peak past key 0 (both over cells,
# the first also over the sink weights), rows x columns pooled values, each pooled row's largest value over all its
# keys (its whole rows, not only the region's columns, and their sink weights), then, for a layer with sinks, the
# pooled sink weight of each row.
TILE_DTYPE = "float32"
TILE_POOLINGS = ("max", "mean")
MAX_TILE_SIDE = 2048
"""The most rows or columns a tile has: a canvas 1024 CSS pixels wide at two device pixels each. 16 MiB at most."""


def tile_bytes(rows: int, columns: int, has_sinks: bool) -> int:
    """What a tile of `rows` x `columns` weighs."""
    return _FLOAT32_LITTLE_ENDIAN.itemsize * (2 + rows * columns + rows * (2 if has_sinks else 1))


@dataclass(frozen=True)
class Tile:
    """What a tile request names: query rows [q0, q1) and keys [k0, k1) of one head, pooled to rows x columns."""

    stack: str
    layer: int
    head: int
    q0: int
    q1: int
    k0: int
    k1: int
    rows: int
    columns: int
    pooling: str


def head_tile(capture: Capture, tile: Tile) -> bytes:
    """The tile's float32 values, computing only the region's query rows, a few bins at a time, so a tile of a
    4096-token head never holds the head."""
    row_bounds = tile.q0 + np.array([*_bin_starts(tile.q1 - tile.q0, tile.rows), tile.q1 - tile.q0])
    column_starts = _bin_starts(tile.k1 - tile.k0, tile.columns)
    sinks = capture.sinks(tile.layer, tile.stack)
    step = rows_per_chunk(len(capture.stack_tokens(tile.stack)[1]))
    cells, row_peaks, sink_weights_pooled = [], [], []
    peak = past_first = 0.0
    first = 0
    while first < tile.rows:
        # Whole bins, about `step` query rows of them (at least one bin) at once.
        last = first + 1
        while last < tile.rows and row_bounds[last + 1] - row_bounds[first] <= step:
            last += 1
        start, stop = int(row_bounds[first]), int(row_bounds[last])
        rows_here = capture.head_rows(tile.layer, tile.head, start, stop, tile.stack).astype(np.float32, copy=False)
        row_max = rows_here.max(axis=1)  # NaN where a row is NaN: a fully masked row, the only kind there is
        # Copying a block to zero its NaN took longer than deriving it (0.3 s at 4096 x 4096): only when there are any.
        block = np.nan_to_num(rows_here, nan=0.0) if np.isnan(row_max).any() else rows_here
        bounds = row_bounds[first : last + 1] - start
        region_block = block[:, tile.k0 : tile.k1]
        cells.append(_pool(region_block, bounds, column_starts, tile.pooling))
        peak = max(peak, float(region_block.max()))
        if tile.k1 > 1:
            past_first = max(past_first, float(block[:, max(tile.k0, 1) : tile.k1].max()))
        row_max = np.nan_to_num(row_max, nan=0.0)
        if sinks is not None:
            unseen = np.isneginf(np.reshape(sinks[tile.head], -1))
            # As in `head_chunk`: a row that sees no such key (-inf), or no key at all (NaN), gives the sink nothing.
            weights = np.nan_to_num(sink_weights(rows_here), nan=0.0).astype(np.float32)
            weights = np.where(unseen if unseen.size == 1 else unseen[start:stop], 0.0, weights)
            sink_weights_pooled.append(_pool(weights[:, None], bounds, np.zeros(1, dtype=int), tile.pooling)[:, 0])
            peak = max(peak, float(weights.max()))
            row_max = np.maximum(row_max, weights)
        row_peaks.append(_pool(row_max[:, None], bounds, np.zeros(1, dtype=int), tile.pooling)[:, 0])
        first = last
    parts = [np.array([peak, past_first]), *(c.ravel() for c in cells), *row_peaks, *sink_weights_pooled]
    return np.concatenate(parts).astype(_FLOAT32_LITTLE_ENDIAN).tobytes()


def tile_response(request_id: Any, tile: Tile) -> dict[str, Any]:
    """The message that goes with a tile: the request's fields."""
    return {"kind": RESPONSE_KIND, "id": request_id, "what": WHAT_TILE, **asdict(tile), "dtype": TILE_DTYPE}


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


# One head of one layer of one stack for the neuron view travels as one "query-key record": a little-endian
# uint32 header length, a UTF-8 JSON header, then the arrays, each starting at a multiple of 8 bytes so the
# browser can view them as typed arrays (offsets count from the end of the padded header). Queries and keys are
# float32, the capture's own numbers: the browser computes q·k × scale from them in float64, so the scores and
# softmax it shows equal Python's to every digit shown, from heads × n × d values instead of heads × n².
# The bias travels in the smallest of its forms that gives back the capture's exactly (`bias_terms`).
QUERY_KEY_ALIGN = 8
_HEADER_LENGTH = np.dtype("<u4")
BIAS_DIAGONAL = "bias_diagonal"
"""[n_query + n_key - 1]: a term that depends on key - query only (causal mask, sliding window, T5's relative
position bias); query q and key k read index k - q + n_query - 1."""
BIAS_KEY = "bias_key"
"""[n_key]: a term that depends on the key only (padding mask, ALiBi as BLOOM adds it)."""
BIAS_WHOLE = "bias"
"""[n_query, n_key]: any other bias (DeBERTa's and XLNet's content-to-position terms, block-sparse layouts)."""


def has_query_key(capture: Capture) -> bool:
    """Whether every layer of every recorded stack holds queries, keys and their scale (not so for `from_attention`;
    derived stacks never do)."""
    return all(
        layer.query is not None and layer.key is not None and layer.scale is not None
        for stack in capture.recorded_stacks
        for layer in capture.stack(stack).layers
    )


def _toeplitz(diagonal: np.ndarray, n_query: int, n_key: int) -> np.ndarray:
    """The [n_query, n_key] view whose (q, k) is diagonal[k - q + n_query - 1], without copying."""
    return np.lib.stride_tricks.sliding_window_view(diagonal[::-1], n_key)[:n_query, ::-1]


def _diagonal_of(bias: np.ndarray) -> np.ndarray:
    """Each diagonal's value as the first column (bottom up), then the first row hold it."""
    return np.ascontiguousarray(np.concatenate([bias[::-1, 0], bias[0, 1:]]))


def _diagonal_and_key(bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A candidate split bias = diagonal + key term: the key term is the last row (a causal query that sees every
    key: BLOOM's ALiBi), the diagonal term what each diagonal adds to it, read from the first rows where the key is
    not masked."""
    n_query, n_key = bias.shape
    key = bias[-1].copy()
    diagonal = np.zeros(n_query + n_key - 1, dtype=bias.dtype)
    known = np.zeros(diagonal.size, dtype=bool)
    known[:n_key] = True  # the last row's diagonals: the key term holds all of them
    with np.errstate(invalid="ignore"):
        for q in range(n_query):
            if known.all():
                break
            index = np.arange(n_key) - q + n_query - 1
            fill = ~known[index] & np.isfinite(key)
            diagonal[index[fill]] = bias[q, fill] - key[fill]
            known[index[fill]] = True
    return diagonal, key


def bias_terms(bias: np.ndarray) -> dict[str, np.ndarray]:
    """One head's [n_query or 1, n_key] float32 bias in its smallest exact form: `BIAS_KEY`, `BIAS_DIAGONAL`, both
    (summed in float32, -inf masking), else `BIAS_WHOLE`. Each candidate is checked to give back every value
    bit for bit, so no form is ever a guess."""
    if bias.shape[0] == 1 or (bias == bias[0]).all():
        return {BIAS_KEY: np.ascontiguousarray(bias[0])}
    n_query, n_key = bias.shape
    diagonal = _diagonal_of(bias)
    if np.array_equal(_toeplitz(diagonal, n_query, n_key), bias):
        return {BIAS_DIAGONAL: diagonal}
    diagonal, key = _diagonal_and_key(bias)
    with np.errstate(invalid="ignore"):
        rebuilt = _toeplitz(diagonal, n_query, n_key) + key
    if np.array_equal(rebuilt, bias):
        return {BIAS_DIAGONAL: diagonal, BIAS_KEY: key}
    return {BIAS_WHOLE: np.ascontiguousarray(bias)}


class _BiasForms:
    """Each head's `bias_terms`, worked out once per bias array: one mask serves every layer, and a 4096-token
    map takes about 0.1 s to check."""

    def __init__(self) -> None:
        self._forms: dict[tuple[int, int], tuple[weakref.ref, dict[str, np.ndarray]]] = {}

    def of(self, bias: np.ndarray, head: int) -> dict[str, np.ndarray]:
        """The terms of `head` of a capture's bias (broadcastable to [heads, n_query, n_key]), known by the array
        itself: the same array object gets the same answer while it lives."""
        heads = bias.reshape((1,) * (3 - bias.ndim) + bias.shape)
        head = head if heads.shape[0] > 1 else 0
        key = (id(bias), head)
        known = self._forms.get(key)
        if known is None or known[0]() is not bias:
            self._forms = {k: v for k, v in self._forms.items() if v[0]() is not None}  # forget dead arrays
            terms = bias_terms(np.asarray(heads[head], dtype=_FLOAT32_LITTLE_ENDIAN))
            known = self._forms[key] = (weakref.ref(bias), terms)
        return known[1]


_BIAS_FORMS = _BiasForms()


def query_key_arrays(capture: Capture, stack: str, layer: int, head: int) -> dict[str, np.ndarray]:
    """The arrays of one head's record: its query [n_query, d] and its key/value head's key [n_key, d] as float32,
    the bias in its smallest exact form (`bias_terms`), and `sinks` where the layer has them: [1] (GPT-OSS's learned
    sink) or [n_query] (Inkling2's, or the log-sum-exp of keys outside the text)."""
    record = capture.stack(stack).layers[layer]
    if record.query is None or record.key is None:
        capture.query_key(layer, stack)  # raises the capture's own error
    kv_head = int(capture.kv_head_of(stack)[head])
    arrays = {
        "query": np.ascontiguousarray(record.query[head], dtype=_FLOAT32_LITTLE_ENDIAN),
        "key": np.ascontiguousarray(record.key[kv_head], dtype=_FLOAT32_LITTLE_ENDIAN),
    }
    bias = capture.bias(layer, stack)
    if bias is not None:
        arrays.update(_BIAS_FORMS.of(bias, head))
    sinks = capture.sinks(layer, stack)
    if sinks is not None:
        arrays["sinks"] = np.asarray(sinks[head], dtype=_FLOAT32_LITTLE_ENDIAN).reshape(-1)
    return arrays


def query_key_record(capture: Capture, stack: str, layer: int, head: int) -> bytes:
    """One head of one layer of one stack as a query-key record (see above and docs/data-contract.md)."""
    arrays = query_key_arrays(capture, stack, layer, head)
    layout, offset = [], 0
    for name, array in arrays.items():
        layout.append({"name": name, "dtype": array.dtype.name, "shape": list(array.shape), "offset": offset})
        offset += _aligned(array.nbytes)
    header = {
        "scale": capture.layer_scale(layer, stack),
        "softcap": capture.softcap(layer, stack),
        "kv_head": int(capture.kv_head_of(stack)[head]),
        "arrays": layout,
    }
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


def record_bias(arrays: dict[str, np.ndarray], n_query: int, n_key: int) -> np.ndarray | None:
    """A decoded record's bias as [n_query, n_key] float32, as the browser rebuilds it (the terms summed in
    float32), or None without one."""
    if BIAS_WHOLE in arrays:
        return arrays[BIAS_WHOLE]
    terms = []
    if BIAS_DIAGONAL in arrays:
        terms.append(_toeplitz(arrays[BIAS_DIAGONAL], n_query, n_key))
    if BIAS_KEY in arrays:
        terms.append(np.broadcast_to(arrays[BIAS_KEY], (n_query, n_key)))
    if not terms:
        return None
    with np.errstate(invalid="ignore"):
        return np.asarray(sum(terms[1:], terms[0]), dtype=np.float32)


def query_key_bytes(capture: Capture, stack: str, layer: int) -> int:
    """About what one head's record of this layer weighs, without building it: float32 q and k, and the bias as a
    key vector or a diagonal (a bias that goes whole adds more)."""
    n_query, n_key = capture.stack(stack).layers[layer].shape[1:]
    head_dim = capture.stack(stack).layers[layer].query.shape[-1]
    bias = 0 if capture.bias(layer, stack) is None else n_query + n_key
    sinks = 0 if capture.sinks(layer, stack) is None else n_query
    return 4 * ((n_query + n_key) * head_dim + bias + sinks)


def all_query_key_bytes(capture: Capture) -> int:
    return sum(
        capture.num_heads(stack) * query_key_bytes(capture, stack, layer)
        for stack, layer in map(parse_chunk_key, all_chunk_keys(capture, capture.recorded_stacks))
    )


def all_query_key_records(capture: Capture) -> dict[str, bytes]:
    """Every recorded head's record keyed like the attention chunks: the `_qk` trait of a preloaded widget."""
    return {
        key: query_key_record(capture, *parse_head_key(key)) for key in all_head_keys(capture, capture.recorded_stacks)
    }


def query_key_response(request_id: Any, stack: str, layer: int, head: int) -> dict[str, Any]:
    """The message that goes with a query-key record sent on request."""
    return {
        "kind": RESPONSE_KIND, "id": request_id, "what": WHAT_QUERY_KEY, "stack": stack, "layer": layer, "head": head,
    }  # fmt: skip


def _aligned(nbytes: int) -> int:
    return -(-nbytes // QUERY_KEY_ALIGN) * QUERY_KEY_ALIGN


# -- meta ---------------------------------------------------------------------------------
def _sink_meta(sink: Sink | None) -> dict[str, str] | None:
    """What a stack's sink stands for, as the page names it (`meta.stacks[*].sink`); None without sinks."""
    return None if sink is None else {"label": sink.label, "stands_for": sink.stands_for}


# -- derived stacks (capturing/derived.py) ------------------------------------------------------
def _derived_meta(derivation: Derivation | None) -> dict[str, Any] | None:
    """`meta.stacks[*].derived`: the recorded stack a derived one is computed from, its measure, whether it is at word
    level; None (null) for a recorded stack."""
    if derivation is None:
        return None
    return {"from": derivation.base, "measure": derivation.measure, "words": derivation.words}


def _words_meta(side: TokenSide) -> dict[str, Any] | None:
    """`meta.sides[*].words`: on a side of words, the token side it groups and the first token of each word; None
    (null) on a side of tokens."""
    return None if side.words_of is None else {"of": side.words_of, "starts": list(side.word_starts)}


# -- generation steps (widgets made by AttentionWidget.generate) -----------------------------
STEP_TRAIT = "step"
"""The generation step shown, or None: step s selects the query row that produced generated token s."""
GENERATION_META = "generation"
"""`meta.generation`, only in the meta of a generated capture."""


def generation_meta(generation: Generation) -> dict[str, Any]:
    """`meta.generation`: where the steps' query rows are (docs/data-contract.md, "Generation steps")."""
    return {
        "stack": generation.stack,
        "side": generation.side,
        "prompt_length": generation.prompt_length,
        "first_row": generation.first_row,
        "steps": generation.steps,
    }


# -- head scores (the model view's atlas) ------------------------------------------------------
SCORE_TRAIT = "score"
"""The head score the model view colours, sorts and filters by: a name of `meta.head_scores`, or "" for none."""
HEAD_SCORES_META = "head_scores"
"""`meta.head_scores`: every head's scores, or None when none were computed."""

HeadId = tuple[str, int, int]
"""(stack, layer, head)."""


def head_scores_meta(capture: Capture, scores: Mapping[HeadId, Mapping[str, float]]) -> dict[str, Any] | None:
    """`meta.head_scores` (docs/data-contract.md, "Head scores"): every score any head has, in `SCORE_INFO`'s
    order, by stack, layer and head; None (JSON null) where a head lacks one or it is NaN; None without scores."""
    names = [name for name in SCORE_INFO if any(name in row for row in scores.values())]
    if not names:
        return None

    def value(head: HeadId, name: str) -> float | None:
        number = scores.get(head, {}).get(name)
        return None if number is None or not math.isfinite(number) else float(number)

    return {
        "scores": [
            {"name": name, "label": SCORE_INFO[name].label, "about": SCORE_INFO[name].about,
             "range": None if SCORE_INFO[name].bounds is None else list(SCORE_INFO[name].bounds)}
            for name in names
        ],  # fmt: skip
        "values": {
            stack: [
                [[value((stack, layer, head), name) for name in names] for head in range(capture.num_heads(stack))]
                for layer in range(capture.num_layers(stack))
            ]
            for stack in capture.stacks
        },
    }


def build_meta(
    capture: Capture,
    *,
    chunks_complete: bool,
    query_key_complete: bool = False,
    head_scores: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The `meta` trait: tokens of each side, the stacks and their sizes, the chunk encoding, and the head scores
    (`head_scores_meta`) when there are any."""
    sides = {
        name: {
            "tokens": list(side.tokens),
            "special": [bool(flag) for flag in side.special],
            "segment_b_start": None if side.segment_b_start is None else int(side.segment_b_start),
            "words": _words_meta(side),
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
                "derived": _derived_meta(record.derivation),
            }
        )
    meta = {
        "version": CONTRACT_VERSION,
        "sides": sides,
        "stacks": stacks,
        "encoding": {"dtype": ATTENTION_DTYPE, "scale": ATTENTION_SCALE},
        "thumbnails": {"size": THUMBNAIL_SIZE, "pooling": "max"},
        "chunks_complete": chunks_complete,
        "query_key": {"available": has_query_key(capture), "complete": query_key_complete},
    }
    if capture.generation is not None:
        meta[GENERATION_META] = generation_meta(capture.generation)
    if head_scores is not None:
        meta[HEAD_SCORES_META] = head_scores
    return meta
