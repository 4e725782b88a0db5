"""The wire format: attention bytes, float16 queries/keys and the meta dict (docs/data-contract.md)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_capture, make_seq2seq_capture, random_attention

from attnwidget import wire
from attnwidget.capturing import Capture, LayerRecord, Sink, StackRecord


# -- attention bytes ------------------------------------------------------------------------
def test_quantized_attention_round_trips_within_half_a_step():
    rng = np.random.default_rng(1)
    attention = random_attention(rng, 4, 9, 11)
    attention[0, 0, :3] = [0.0, 1.0, 0.5 / 255]  # the ends, and a value exactly between two steps

    chunk = wire.quantize_attention(attention)

    assert isinstance(chunk, bytes) and len(chunk) == attention.size
    decoded = wire.dequantize_attention(chunk, attention.shape)
    assert np.max(np.abs(decoded - attention)) <= 1 / 510 + 1e-7
    assert decoded[0, 0, 0] == 0.0 and decoded[0, 0, 1] == 1.0


def test_quantized_bytes_are_row_major_head_query_key():
    attention = np.zeros((2, 3, 4), dtype=np.float32)
    attention[1, 2, 3] = 1.0
    attention[0, 1, 0] = 0.2

    chunk = wire.quantize_attention(attention)

    assert chunk[1 * 12 + 2 * 4 + 3] == 255
    assert chunk[0 * 12 + 1 * 4 + 0] == round(0.2 * 255)
    assert sum(chunk) == 255 + round(0.2 * 255)


def test_quantize_clips_out_of_range_values_and_zeroes_nan():
    attention = np.array([[[-0.5, 1.7, np.nan, 0.25]]], dtype=np.float32)

    assert list(wire.quantize_attention(attention)) == [0, 255, 0, round(0.25 * 255)]


def test_quantize_accepts_float16():
    attention = random_attention(np.random.default_rng(2), 2, 3, 3)
    half = attention.astype(np.float16)
    decoded = wire.dequantize_attention(wire.quantize_attention(half), half.shape)
    assert np.max(np.abs(decoded - half.astype(np.float32))) <= 1 / 510 + 1e-7


def test_dequantize_rejects_a_chunk_of_the_wrong_size():
    with pytest.raises(ValueError, match="needs 24"):
        wire.dequantize_attention(bytes(23), (2, 3, 4))


def test_chunk_and_head_keys_round_trip():
    assert wire.chunk_key("cross", 11) == "cross/11"
    assert wire.parse_chunk_key(wire.chunk_key("decoder", 3)) == ("decoder", 3)
    assert wire.head_key("cross", 11, 5) == "cross/11/5"
    assert wire.parse_head_key(wire.head_key("a/b", 3, 7)) == ("a/b", 3, 7)


def _layer_from_heads(capture: Capture, stack: str, layer: int, has_sinks: bool = False):
    """A layer's attention [heads, n_query, n_key] and sink weights [heads, n_query] (or None) from its head chunks."""
    split = []
    for head in range(capture.num_heads(stack)):
        chunk, shape = wire.head_chunk(capture, stack, layer, head)
        split.append(wire.split_head_chunk(chunk, shape, has_sinks))
    attention = np.stack([a for a, _ in split])
    return attention, np.stack([s for _, s in split]) if has_sinks else None


def test_a_head_chunk_is_that_head_quantized_with_its_shape():
    capture = make_seq2seq_capture()

    chunk, shape = wire.head_chunk(capture, "cross", 1, 2)

    assert shape == [4, 7] and len(chunk) == 4 * 7
    np.testing.assert_allclose(
        wire.dequantize_attention(chunk, shape), capture.layer_attention(1, "cross")[2], atol=1 / 510 + 1e-7
    )


def test_attention_bytes_counts_one_byte_per_value_over_all_stacks():
    capture = make_seq2seq_capture()

    expected = 3 * 4 * 7 * 7 + 2 * 4 * 4 * 4 + 2 * 4 * 4 * 7
    assert wire.attention_bytes(capture) == expected
    assert wire.attention_bytes(capture) == sum(
        len(wire.head_chunk(capture, *wire.parse_head_key(key))[0]) for key in wire.all_head_keys(capture)
    )


# -- thumbnails -----------------------------------------------------------------------------
def test_a_max_pooled_thumbnail_keeps_a_one_cell_diagonal_visible():
    """At 1000 tokens a thumbnail pixel covers about 16 × 16 cells; a mean would dim a diagonal to 1/16."""
    attention = np.eye(1000, dtype=np.float32) * 0.5
    attention[700, 3] = 1.0  # one strong cell off the diagonal

    picture = wire.thumbnail(attention)

    assert picture.shape == (wire.THUMBNAIL_SIZE, wire.THUMBNAIL_SIZE) and picture.dtype == np.uint8
    assert (np.diag(picture) == round(0.5 * 255)).all()
    assert picture[700 * 64 // 1000, 0] == 255
    assert (picture[np.triu_indices(64, 2)] == 0).all()  # nothing but the diagonal's own blocks lights up


def test_a_short_inputs_thumbnail_is_the_head_itself_and_a_fully_masked_row_is_blank():
    attention = random_attention(np.random.default_rng(4), 1, 9, 13)[0]
    attention[4] = np.nan  # a row that sees no key at all

    assert wire.thumbnail(attention).tobytes() == wire.quantize_attention(attention)
    assert not wire.thumbnail(attention)[4].any()


def test_layer_thumbnails_hold_every_head_in_order():
    capture = make_seq2seq_capture()

    thumbnails = np.frombuffer(wire.layer_thumbnails(capture, "cross", 1), np.uint8).reshape(4, 4, 7)

    for head in range(4):
        assert thumbnails[head].tobytes() == wire.head_chunk(capture, "cross", 1, head)[0]
    assert sorted(wire.all_thumbnails(capture)) == sorted(wire.all_chunk_keys(capture))


# -- float16 --------------------------------------------------------------------------------
def test_a_layer_with_attention_sinks_appends_what_each_query_gives_its_sink():
    """Queries and keys of zeros score every key 0: each of n keys gets 1 / (n + e^s), the sink e^s / (n + e^s)."""
    capture = make_capture(layers=1, heads=2, tokens=4)
    side = capture.sides["input"]
    sinks = np.array([0.0, np.log(4.0)], np.float32)
    zeros = np.zeros((2, 4, 8), np.float32)
    layer = LayerRecord(query=zeros, key=zeros, scale=1.0, sinks=sinks)
    capture = Capture([side], [StackRecord("self", "input", "input", [layer], np.arange(2), [0])])

    attention, sink_weights = _layer_from_heads(capture, "self", 0, has_sinks=True)
    chunk, shape = wire.head_chunk(capture, "self", 0, 1)

    assert len(chunk) == 4 * 4 + 4 and 2 * len(chunk) == wire.attention_bytes(capture)
    np.testing.assert_allclose(sink_weights, [[1 / 5] * 4, [4 / 8] * 4], atol=1 / 510)
    np.testing.assert_allclose(attention[0], 1 / 5, atol=1 / 510)
    np.testing.assert_allclose(attention[1], 1 / 8, atol=1 / 510)
    assert wire.build_meta(capture, chunks_complete=True)["stacks"][0]["has_sinks"] == [True]
    with pytest.raises(ValueError, match="needs 20"):
        wire.split_head_chunk(chunk[:16], shape, has_sinks=True)


def test_a_sink_per_query_stands_for_keys_outside_the_text_and_meta_names_them():
    """A sink logit per head and query, log(4q): with 4 tokens scored 0, query q gives it 4q / (4 + 4q) of its
    weight; query 0 sees none of those keys (-inf) and gives it nothing."""
    capture = make_capture(layers=1, heads=2, tokens=4)
    side = capture.sides["input"]
    with np.errstate(divide="ignore"):
        sinks = np.log(4.0 * np.arange(4, dtype=np.float32))[None].repeat(2, axis=0)
    zeros = np.zeros((2, 4, 8), np.float32)
    layer = LayerRecord(query=zeros, key=zeros, scale=1.0, sinks=sinks)
    prompt = Sink("<prompt>", "the 3 prompt positions the model puts before the text")
    capture = Capture([side], [StackRecord("self", "input", "input", [layer], np.arange(2), [0], sink=prompt)])

    attention, sink_weights = _layer_from_heads(capture, "self", 0, has_sinks=True)
    np.testing.assert_allclose(sink_weights, [[0, 1 / 2, 2 / 3, 3 / 4]] * 2, atol=1 / 510)
    np.testing.assert_allclose(attention.sum(-1) + sink_weights, 1, atol=3 / 510)
    for head in range(2):
        _, arrays = wire.decode_query_key_record(wire.query_key_record(capture, "self", 0, head))
        np.testing.assert_array_equal(arrays["sinks"], sinks[head])
    meta = wire.build_meta(capture, chunks_complete=True)["stacks"][0]
    assert meta["sink"] == {"label": "<prompt>", "stands_for": "the 3 prompt positions the model puts before the text"}

    wrong = LayerRecord(query=zeros, key=zeros, scale=1.0, sinks=sinks[:, :3])
    with pytest.raises(ValueError, match=r"sinks of shape \(2, 3\) are neither one per head"):
        Capture([side], [StackRecord("self", "input", "input", [wrong], np.arange(2), [0])])


def test_float16_round_trip_keeps_shape_and_half_precision():
    values = np.random.default_rng(3).normal(size=(2, 5, 8)).astype(np.float32)

    data, header = wire.encode_float16(values)

    assert header == {"dtype": "float16", "shape": [2, 5, 8]}
    assert len(data) == values.size * 2
    decoded = wire.decode_float16(data, header["shape"])
    np.testing.assert_allclose(decoded, values, rtol=1e-3, atol=1e-3)
    # Little-endian on the wire whatever the host: the first value's low byte comes first.
    assert data[:2] == np.float16(values.flat[0]).astype("<f2").tobytes()


# -- meta -----------------------------------------------------------------------------------
def test_meta_describes_a_self_attention_capture_with_a_pair():
    capture = make_capture(layers=2, heads=4, tokens=6, segment_b_start=3, kv_head_of=np.array([0, 0, 1, 1]))

    meta = wire.build_meta(capture, chunks_complete=True)

    assert meta["version"] == wire.CONTRACT_VERSION
    assert meta["sides"] == {
        "input": {
            "tokens": ["i0", "i1", "i2", "i3", "i4", "i5"],
            "special": [True, False, False, False, False, True],
            "segment_b_start": 3,
            "words": None,
        }
    }
    assert meta["stacks"] == [
        {"name": "self", "query_side": "input", "key_side": "input", "layers": 2, "heads": 4,
         "kv_head_of": [0, 0, 1, 1], "layer_numbers": [0, 1], "has_sinks": [False, False], "sink": None,
         "derived": None}
    ]
    assert meta["encoding"] == {"dtype": "uint8", "scale": 255}
    assert meta["chunks_complete"] is True


def test_meta_of_an_encoder_decoder_lists_both_sides_and_three_stacks_in_order():
    meta = wire.build_meta(make_seq2seq_capture(), chunks_complete=False)

    assert list(meta["sides"]) == ["input", "decoder"]
    assert meta["sides"]["decoder"]["segment_b_start"] is None
    assert [(s["name"], s["query_side"], s["key_side"], s["layers"]) for s in meta["stacks"]] == [
        ("encoder", "input", "input", 3),
        ("decoder", "decoder", "decoder", 2),
        ("cross", "decoder", "input", 2),
    ]
    assert meta["stacks"][0]["kv_head_of"] == [0, 1, 2, 3]
    assert meta["chunks_complete"] is False


def test_meta_is_plain_json():
    import json

    capture = make_capture(segment_b_start=np.int64(2), kv_head_of=np.array([0, 1, 2]))  # numpy scalars in

    meta = wire.build_meta(capture, chunks_complete=True)

    assert json.loads(json.dumps(meta)) == meta


def _toeplitz(values: np.ndarray, n: int) -> np.ndarray:
    """[n, n] whose (q, k) is values[k - q + n - 1]."""
    offsets = np.arange(n)[None, :] - np.arange(n)[:, None]
    return values[offsets + n - 1]


@pytest.mark.parametrize(
    ("name", "forms"),
    [
        ("padding", {wire.BIAS_KEY}),
        ("sliding window", {wire.BIAS_DIAGONAL}),
        ("causal with padding", {wire.BIAS_DIAGONAL, wire.BIAS_KEY}),
        ("causal with left padding", {wire.BIAS_DIAGONAL, wire.BIAS_KEY}),
        ("relative position, causal", {wire.BIAS_DIAGONAL}),
        ("ALiBi, causal", {wire.BIAS_DIAGONAL, wire.BIAS_KEY}),
        ("sliding window with padding", {wire.BIAS_WHOLE}),
        ("anything", {wire.BIAS_WHOLE}),
    ],
)
def test_bias_terms_give_back_every_value_in_the_smallest_form(name, forms):
    n = 7
    rng = np.random.default_rng(5)
    offsets = np.arange(n)[None, :] - np.arange(n)[:, None]  # key - query
    causal = np.where(offsets > 0, -np.inf, 0)
    padding = np.where(np.arange(n) >= 5, -np.inf, 0)
    left_padding = np.where(np.arange(n) < 2, -np.inf, 0)
    window = np.where((offsets > 0) | (offsets <= -3), -np.inf, 0)
    bias = {
        "padding": np.broadcast_to(padding, (n, n)),
        "sliding window": window,
        "causal with padding": causal + padding,
        "causal with left padding": causal + left_padding,
        "relative position, causal": _toeplitz(rng.normal(size=2 * n - 1), n) + causal,
        "ALiBi, causal": causal + 0.0625 * np.arange(n),
        "sliding window with padding": window + padding,
        "anything": rng.normal(size=(n, n)),
    }[name].astype(np.float32)

    terms = wire.bias_terms(bias)

    assert set(terms) == forms
    sizes = {wire.BIAS_KEY: n, wire.BIAS_DIAGONAL: 2 * n - 1, wire.BIAS_WHOLE: n * n}
    assert all(term.size == sizes[form] for form, term in terms.items())
    np.testing.assert_array_equal(wire.record_bias(terms, n, n), bias)


def test_a_bias_shared_by_every_layer_is_checked_once(monkeypatch):
    n = 6
    causal = np.where(np.arange(n)[None, :] > np.arange(n)[:, None], -np.inf, 0).astype(np.float32)[None]
    rng = np.random.default_rng(2)
    queries = [rng.normal(size=(2, n, 4)).astype(np.float32) for _ in range(3)]
    layers = [LayerRecord(query=query, key=query, scale=0.5, bias=causal) for query in queries]
    side = make_capture(layers=1, heads=2, tokens=n).sides["input"]
    capture = Capture([side], [StackRecord("self", "input", "input", layers, np.arange(2), [0, 1, 2])])
    checked = []
    monkeypatch.setattr(wire, "bias_terms", lambda bias: checked.append(bias) or {wire.BIAS_WHOLE: bias})

    records = [wire.query_key_record(capture, "self", layer, head) for layer in range(3) for head in range(2)]

    assert len(checked) == 1 and len(set(records[::2])) == 3  # one check; each layer its own queries and keys
