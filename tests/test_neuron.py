"""Queries and keys for the neuron view: what Python serves equals what the capture recorded.

The browser computes nothing the user reads from float16: it shows float32 scores and bias and
their softmax. So the softmax of a served record must equal the capture's attention.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import ARCHITECTURES, ENCODER_DECODER, assert_record_matches_capture, browser_request, make_capture

from attnwidget import AttentionWidget, capture, wire
from attnwidget.wire import BROWSER_WRITABLE

pytestmark = pytest.mark.usefixtures("recording_comm")

def request(widget, stack, layer, request_id=1):
    content, buffers = browser_request(
        widget, {"kind": "request", "id": request_id, "what": "query_key", "stack": stack, "layer": layer}
    )
    return content, buffers


def served(widget, stack, layer):
    content, buffers = request(widget, stack, layer)
    assert content == {"kind": "response", "id": 1, "what": "query_key", "stack": stack, "layer": layer}
    assert len(buffers) == 1
    return wire.decode_query_key_record(buffers[0])


@pytest.fixture(scope="module")
def minilm_capture(minilm):
    model, tokenizer = minilm
    return capture(model, tokenizer, "leaves fall in autumn", "autumn is marked by colorful foliage")


def test_the_query_key_trait_is_synced_and_read_only_from_the_browser():
    trait = AttentionWidget.class_traits(sync=True).get("_qk")
    assert trait is not None and trait.help
    assert "_qk" not in BROWSER_WRITABLE


def test_minilm_records_equal_the_capture_and_are_preloaded_for_a_short_text(minilm_capture, widgets):
    widget = widgets(minilm_capture)

    assert widget.meta["query_key"] == {"available": True, "complete": True}
    assert sorted(widget._qk) == sorted(wire.all_chunk_keys(minilm_capture))
    for layer in range(6):
        header, arrays = served(widget, "self", layer)
        assert arrays["query"].shape == (12, len(minilm_capture.tokens), 32)
        assert_record_matches_capture(minilm_capture, "self", layer, header, arrays)
        assert widget._qk[f"self/{layer}"] == wire.query_key_record(minilm_capture, "self", layer)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_every_architecture_serves_records_whose_softmax_is_its_attention(tiny_models, widgets, arch):
    model, tokenizer = tiny_models(arch)
    decoder = {"decoder_text": "le chat"} if arch in ENCODER_DECODER else {}
    result = capture(model, tokenizer, "the cat sat on the mat", **decoder)
    widget = widgets(result, preload_qk_bytes=0)

    for stack in result.stacks:
        for layer in range(result.num_layers(stack)):
            assert_record_matches_capture(result, stack, layer, *served(widget, stack, layer))


def test_gqa_llama_sends_each_key_value_head_once_and_its_causal_mask(tiny_models, widgets):
    model, tokenizer = tiny_models("llama")  # 4 query heads share 2 key/value heads
    result = capture(model, tokenizer, "the cat sat on the mat")
    widget = widgets(result)
    n = len(result.tokens)

    assert widget.meta["stacks"][0]["kv_head_of"] == [0, 0, 1, 1]
    header, arrays = served(widget, "self", 1)
    assert arrays["key"].shape == (2, n, 8) and arrays["query"].shape == (4, n, 8)
    assert_record_matches_capture(result, "self", 1, header, arrays)
    masked = np.isneginf(np.broadcast_to(arrays["bias"], (4, n, n)))
    np.testing.assert_array_equal(masked, np.triu(np.ones((4, n, n), bool), k=1))


def test_t5_sends_its_relative_position_bias_and_unit_scale(tiny_models, widgets):
    model, tokenizer = tiny_models("t5")
    result = capture(model, tokenizer, "the cat sat on the mat", decoder_text="le chat")
    widget = widgets(result)

    for stack in ("encoder", "decoder"):
        header, arrays = served(widget, stack, 0)
        assert header["scale"] == 1.0
        finite = arrays["bias"][np.isfinite(arrays["bias"])]
        assert np.ptp(finite) > 0.1, f"T5's {stack} position bias differs between positions"
        assert_record_matches_capture(result, stack, 0, header, arrays)


def test_bart_cross_attention_reads_decoder_queries_against_input_keys(tiny_models, widgets):
    model, tokenizer = tiny_models("bart")
    result = capture(model, tokenizer, "the cat sat on the mat", decoder_text="le chat")
    widget = widgets(result)
    n_input, n_decoder = len(result.sides["input"]), len(result.sides["decoder"])
    assert n_input != n_decoder

    header, arrays = served(widget, "cross", 1)

    assert arrays["query"].shape[:2] == (4, n_decoder)
    assert arrays["key"].shape[:2] == (4, n_input)
    assert arrays["scores"].shape == (4, n_decoder, n_input)
    assert_record_matches_capture(result, "cross", 1, header, arrays)


@pytest.mark.parametrize(
    ("stack", "layer", "message"),
    [
        ("nope", 0, "no stack 'nope'"),
        ("self", 9, r"layer must be an integer in 0\.\.1"),
        ("self", "0", r"got '0'"),
    ],
)
def test_a_bad_query_key_request_gets_an_error_reply(tiny_models, widgets, stack, layer, message):
    model, tokenizer = tiny_models("bert")
    widget = widgets(capture(model, tokenizer, "the cat"))

    content, buffers = request(widget, stack, layer, request_id=4)

    assert content.keys() == {"kind", "id", "error"} and content["id"] == 4
    assert re.search(message, content["error"]) and buffers == []


def test_attention_without_queries_says_how_to_get_them(widgets):
    widget = widgets(make_capture(layers=2, heads=3, tokens=5))

    content, buffers = request(widget, "self", 0)

    assert widget.meta["query_key"] == {"available": False, "complete": False}
    assert widget._qk == {}
    assert "holds no queries or keys" in content["error"] and "AttentionWidget(model, text)" in content["error"]
    assert buffers == []


def test_over_the_budget_nothing_is_preloaded_and_the_browser_asks(tiny_models, widgets):
    model, tokenizer = tiny_models("bart")
    result = capture(model, tokenizer, "the cat sat on the mat", decoder_text="le chat")
    total = wire.all_query_key_bytes(result)

    within = widgets(result, preload_qk_bytes=total)
    assert within.meta["query_key"] == {"available": True, "complete": True}
    assert sorted(within._qk) == sorted(wire.all_chunk_keys(result))

    over = widgets(result, stack="cross", layer=1, preload_qk_bytes=total - 1)
    assert over.meta["query_key"] == {"available": True, "complete": False}
    assert over._qk == {}
    assert_record_matches_capture(result, "cross", 1, *served(over, "cross", 1))


def test_a_model_widget_shows_the_neuron_view_of_its_own_capture(tiny_models):
    model, tokenizer = tiny_models("gpt2")
    widget = AttentionWidget(model, "the cat sat", tokenizer=tokenizer, view="neuron", layer=1)
    try:
        header, arrays = wire.decode_query_key_record(widget._qk["self/1"])
        assert_record_matches_capture(widget.capture, "self", 1, header, arrays)
    finally:
        widget.close()
