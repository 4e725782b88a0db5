"""Tiles for the matrix view's zoom: a region of one head pooled in Python (docs/data-contract.md, "Tiles")."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import make_capture

from attnwidget import serving, wire
from attnwidget.capturing import Capture, LayerRecord, StackRecord, TokenSide, result

HEADS, N, DIM = 2, 150, 8


def derived_capture(sinks: bool = False) -> Capture:
    """Attention derived from queries and keys on every read, as a model's capture keeps it, optionally with a
    learned sink per head (GPT-OSS); a causal mask so row maxima differ from row to row."""
    rng = np.random.default_rng(5)
    tokens = [f"t{i}" for i in range(N)]
    side = TokenSide("input", tokens, tokens, list(range(N)), [False] * N)
    mask = np.triu(np.full((N, N), -np.inf, dtype=np.float32), k=1)[None]
    layer = LayerRecord(
        query=rng.normal(size=(HEADS, N, DIM)).astype(np.float32) * 2,
        key=rng.normal(size=(HEADS, N, DIM)).astype(np.float32),
        scale=DIM**-0.5,
        bias=mask,
        sinks=rng.normal(size=HEADS).astype(np.float32) + 5 if sinks else None,
    )
    return Capture([side], [StackRecord("self", "input", "input", [layer])])


def ask(capture: Capture, **fields) -> tuple[dict, list[bytes]]:
    request = {"kind": "request", "id": 9, "what": "tile", "stack": "self", "layer": 0, "head": 1, **fields}
    return serving.answer_request(capture, request)


def decode(content: dict, buffer: bytes, has_sinks: bool):
    """(peak, peak past key 0, cells [rows, columns], row peaks [rows], sinks [rows] or None)."""
    rows, columns = content["rows"], content["columns"]
    values = np.frombuffer(buffer, dtype="<f4")
    assert len(buffer) == wire.tile_bytes(rows, columns, has_sinks)
    cells = values[2 : 2 + rows * columns].reshape(rows, columns)
    rest = values[2 + rows * columns :]
    return values[0], values[1], cells, rest[:rows], rest[rows:] if has_sinks else None


def by_hand(values: np.ndarray, bins: int, pooling: str) -> np.ndarray:
    """Rows of `values` pooled into `bins` by row q -> bin floor(q * bins / len(values)), one bin at a time."""
    which = np.arange(len(values)) * bins // len(values)
    reduce = np.max if pooling == "max" else np.mean
    return np.stack([reduce(values[which == b], axis=0) for b in range(bins)])


@pytest.mark.parametrize("pooling", ["max", "mean"])
@pytest.mark.parametrize("sinks", [False, True])
def test_a_tile_is_its_region_of_the_head_pooled(monkeypatch, pooling, sinks):
    # Few rows per computed block, so bins straddle what one block would hold if the tile did not keep them whole.
    monkeypatch.setattr(result, "DERIVE_CHUNK_BYTES", 4 * N * 7)
    capture = derived_capture(sinks)
    region, shape = (23, 140, 5, 97), (19, 13)

    content, buffers = ask(capture, q0=23, q1=140, k0=5, k1=97, rows=19, columns=13, pooling=pooling)

    assert content == {"kind": "response", "id": 9, "what": "tile", "stack": "self", "layer": 0, "head": 1,
                       "q0": 23, "q1": 140, "k0": 5, "k1": 97, "rows": 19, "columns": 13, "pooling": pooling,
                       "dtype": "float32"}  # fmt: skip
    peak, past_first, cells, row_peaks, sink_weights = decode(content, buffers[0], sinks)
    head = capture.head_attention(0, 1)
    rows = head[region[0] : region[1]]
    expected = by_hand(by_hand(rows[:, region[2] : region[3]], shape[0], pooling).T, shape[1], pooling).T
    np.testing.assert_allclose(cells, expected, rtol=1e-6, atol=1e-7)
    weights = 1 - rows.astype(np.float64).sum(axis=1) if sinks else np.zeros(len(rows))
    np.testing.assert_allclose(row_peaks, by_hand(np.maximum(rows.max(axis=1), weights), shape[0], pooling), atol=1e-6)
    if sinks:
        assert weights.max() > 0.2, "the sink takes a share"
        np.testing.assert_allclose(sink_weights, by_hand(weights, shape[0], pooling), atol=1e-6)
    assert peak == pytest.approx(max(rows[:, 5:97].max(), weights.max()), abs=1e-6)
    assert past_first == pytest.approx(rows[:, 5:97].max())


def test_a_tile_down_to_single_cells_holds_the_heads_float32_values():
    capture = derived_capture()
    content, buffers = ask(capture, q0=100, q1=110, k0=0, k1=12, rows=10, columns=12, pooling="max")

    _, past_first, cells, _, _ = decode(content, buffers[0], has_sinks=False)
    head = capture.head_attention(0, 1)
    np.testing.assert_array_equal(cells, head[100:110, :12])
    # Tiny weights keep their digits: at 150 tokens many are far below a byte's 1/255 step, and none is zero.
    assert (cells[cells > 0] < 1 / 510).any() and past_first == head[100:110, 1:12].max()


def test_the_largest_tile_stays_under_the_message_limit():
    side = wire.MAX_TILE_SIDE
    capture = make_capture(layers=1, heads=1, tokens=side + 5)

    content, buffers = serving.answer_request(
        capture, {"kind": "request", "id": 1, "what": "tile", "stack": "self", "layer": 0, "head": 0,
                  "q0": 0, "q1": side + 5, "k0": 0, "k1": side + 5, "rows": side, "columns": side, "pooling": "mean"},
    )  # fmt: skip

    assert "error" not in content and len(buffers[0]) == wire.tile_bytes(side, side, False)
    assert len(buffers[0]) < wire.MAX_MESSAGE_BYTES
    np.testing.assert_allclose(decode(content, buffers[0], False)[2].mean(), 1 / (side + 5), rtol=1e-3)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"q0": 5, "q1": 5}, r"q0 and q1 must be integers with 0 <= q0 < q1 <= 150 \(the query tokens\); got 5 and 5"),
        ({"k1": 151}, r"k0 and k1 must be integers with 0 <= k0 < k1 <= 150 \(the key tokens\)"),
        ({"k0": "0"}, r"k0 and k1 must be integers .*got '0'"),
        ({"rows": 0}, r"rows must be an integer in 1\.\.150 .*ask for a smaller tile"),
        ({"q0": 10, "q1": 20, "rows": 11}, r"rows must be an integer in 1\.\.10 \(the region's 10 cells"),
        ({"columns": 2.5}, r"columns must be an integer"),
        ({"pooling": "median"}, r"pooling must be one of \['max', 'mean'\]; got 'median'"),
        ({"head": 2}, r"head must be an integer in 0\.\.1"),
    ],
)
def test_a_bad_tile_request_gets_a_clear_error_reply(fields, message):
    request = {"q0": 0, "q1": N, "k0": 0, "k1": N, "rows": 10, "columns": 10, "pooling": "max", **fields}

    content, buffers = ask(derived_capture(), **request)

    assert content.keys() == {"kind", "id", "error"} and content["id"] == 9 and buffers == []
    assert re.search(message, content["error"]), content["error"]


@pytest.mark.parametrize("pooling", ["max", "mean"])
def test_a_fully_masked_row_counts_as_nothing_in_a_tile(pooling):
    capture = derived_capture()
    layer = capture.stack("self").layers[0]
    layer.bias = np.broadcast_to(layer.bias, (1, N, N)).copy()
    layer.bias[0, 7] = -np.inf  # query 7 may see no key: its softmax row is NaN
    attention = capture.head_attention(0, 1)
    assert np.isnan(attention[7]).all() and not np.isnan(np.delete(attention, 7, axis=0)).any()
    content, (buffer,) = ask(capture, q0=0, q1=N, k0=0, k1=N, rows=N // 3, columns=N // 5, pooling=pooling)
    peak, past_first, cells, row_peaks, _ = decode(content, buffer, has_sinks=False)
    zeroed = np.nan_to_num(attention, nan=0.0)
    np.testing.assert_allclose(cells, by_hand(by_hand(zeroed, N // 3, pooling).T, N // 5, pooling).T, rtol=1e-6)
    assert peak == zeroed.max() and past_first == zeroed[:, 1:].max()
    assert not np.isnan(row_peaks).any()


def test_rows_derived_for_the_keys_they_see_equal_those_derived_for_every_key_bit_for_bit(monkeypatch):
    # Blocks of 7 rows: under the causal mask each sees only the keys up to its last row, and computes only those
    # (whole blocks of KEYS_SEEN_STEP of them); the rest are exactly 0, the rows exactly as if derived whole.
    monkeypatch.setattr(result, "DERIVE_CHUNK_BYTES", 4 * N * 7)
    capture = derived_capture()
    record = capture.stack("self").layers[0]
    seen = []
    derive = record.derived_rows
    monkeypatch.setattr(record, "derived_rows", lambda head, rows, keys=None: seen.append(keys) or derive(head, rows, keys))
    for head in range(HEADS):
        for start in range(0, N, 7):
            stop = min(start + 7, N)
            every_key = derive(head, np.arange(start, stop)).numpy()
            np.testing.assert_array_equal(capture.head_rows(0, head, start, stop), every_key)
    assert seen[0] == result.KEYS_SEEN_STEP < N and seen[-1] is None, "the first block computes a few keys; the last, all"
