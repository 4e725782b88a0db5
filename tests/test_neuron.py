"""Queries and keys for the neuron view: what Python serves equals what the capture recorded.

A record is one head: the capture's float32 query and key (the browser computes q·k × scale from them in float64)
and its bias in the smallest exact form. So the softmax of a served record must equal the capture's attention.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import ARCHITECTURES, ENCODER_DECODER, assert_record_matches_capture, browser_request, make_capture

from attnwidget import AttentionWidget, capture, wire
from attnwidget.wire import BROWSER_WRITABLE

pytestmark = pytest.mark.usefixtures("recording_comm")

def request(widget, stack, layer, head=0, request_id=1):
    content, buffers = browser_request(
        widget, {"kind": "request", "id": request_id, "what": "query_key", "stack": stack, "layer": layer, "head": head}
    )
    return content, buffers


def served(widget, stack, layer, head=0):
    content, buffers = request(widget, stack, layer, head)
    assert content == {"kind": "response", "id": 1, "what": "query_key", "stack": stack, "layer": layer, "head": head}
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
    assert sorted(widget._qk) == sorted(wire.all_head_keys(minilm_capture))
    for layer in range(6):
        for head in (0, 11):
            header, arrays = served(widget, "self", layer, head)
            assert arrays["query"].shape == (len(minilm_capture.tokens), 32)
            assert_record_matches_capture(minilm_capture, "self", layer, head, header, arrays)
            assert widget._qk[f"self/{layer}/{head}"] == wire.query_key_record(minilm_capture, "self", layer, head)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_every_architecture_serves_records_whose_softmax_is_its_attention(tiny_models, widgets, arch):
    model, tokenizer = tiny_models(arch)
    decoder = {"decoder_text": "le chat"} if arch in ENCODER_DECODER else {}
    result = capture(model, tokenizer, "the cat sat on the mat", **decoder)
    widget = widgets(result, preload_qk_bytes=0)

    for stack in result.stacks:
        for layer in range(result.num_layers(stack)):
            for head in range(result.num_heads(stack)):
                assert_record_matches_capture(result, stack, layer, head, *served(widget, stack, layer, head))


def test_gqa_llama_sends_each_key_value_head_once_and_its_causal_mask(tiny_models, widgets):
    model, tokenizer = tiny_models("llama")  # 4 query heads share 2 key/value heads
    result = capture(model, tokenizer, "the cat sat on the mat")
    widget = widgets(result)
    n = len(result.tokens)

    assert widget.meta["stacks"][0]["kv_head_of"] == [0, 0, 1, 1]
    header, arrays = served(widget, "self", 1, head=3)
    assert header["kv_head"] == 1 and arrays["key"].shape == (n, 8) and arrays["query"].shape == (n, 8)
    assert_record_matches_capture(result, "self", 1, 3, header, arrays)
    # The causal mask travels as its 2n - 1 diagonals, not n x n values.
    assert sorted(arrays) == ["bias_diagonal", "key", "query"]
    np.testing.assert_array_equal(np.isneginf(arrays["bias_diagonal"]), np.arange(2 * n - 1) > n - 1)


def test_t5_sends_its_relative_position_bias_and_unit_scale(tiny_models, widgets):
    model, tokenizer = tiny_models("t5")
    result = capture(model, tokenizer, "the cat sat on the mat", decoder_text="le chat")
    widget = widgets(result)

    for stack in ("encoder", "decoder"):
        for head in range(result.num_heads(stack)):
            header, arrays = served(widget, stack, 0, head)
            assert header["scale"] == 1.0
            # Relative position: one value per key - query, the decoder's causal mask among them.
            assert sorted(arrays) == ["bias_diagonal", "key", "query"]
            finite = arrays["bias_diagonal"][np.isfinite(arrays["bias_diagonal"])]
            assert np.ptp(finite) > 0.1, f"T5's {stack} position bias differs between positions"
            assert_record_matches_capture(result, stack, 0, head, header, arrays)


def test_bart_cross_attention_reads_decoder_queries_against_input_keys(tiny_models, widgets):
    model, tokenizer = tiny_models("bart")
    result = capture(model, tokenizer, "the cat sat on the mat", decoder_text="le chat")
    widget = widgets(result)
    n_input, n_decoder = len(result.sides["input"]), len(result.sides["decoder"])
    assert n_input != n_decoder

    header, arrays = served(widget, "cross", 1, head=2)

    assert arrays["query"].shape[0] == n_decoder
    assert arrays["key"].shape[0] == n_input
    assert_record_matches_capture(result, "cross", 1, 2, header, arrays)


@pytest.mark.parametrize(
    ("stack", "layer", "head", "message"),
    [
        ("nope", 0, 0, "no stack 'nope'"),
        ("self", 9, 0, r"layer must be an integer in 0\.\.1"),
        ("self", "0", 0, r"got '0'"),
        ("self", 0, 4, r"head must be an integer in 0\.\.3"),
        ("self", 0, None, r"head must be an integer in 0\.\.3 for stack 'self'; got None"),
    ],
)
def test_a_bad_query_key_request_gets_an_error_reply(tiny_models, widgets, stack, layer, head, message):
    model, tokenizer = tiny_models("bert")
    widget = widgets(capture(model, tokenizer, "the cat"))

    content, buffers = request(widget, stack, layer, head, request_id=4)

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
    assert sorted(within._qk) == sorted(wire.all_head_keys(result))
    assert sum(map(len, within._qk.values())) <= total + 1024 * len(within._qk)  # the estimate, plus the headers

    over = widgets(result, stack="cross", layer=1, head=2, preload_qk_bytes=total - 1)
    assert over.meta["query_key"] == {"available": True, "complete": False}
    assert list(over._qk) == ["cross/1/2"]  # the focused head, which fits by itself
    assert_record_matches_capture(result, "cross", 1, 3, *served(over, "cross", 1, 3))

    none = widgets(result, preload_qk_bytes=wire.query_key_bytes(result, "encoder", 0) - 1)
    assert none.meta["query_key"]["complete"] is False and none._qk == {}


def test_a_model_widget_shows_the_neuron_view_of_its_own_capture(tiny_models):
    model, tokenizer = tiny_models("gpt2")
    widget = AttentionWidget(model, "the cat sat", tokenizer=tokenizer, view="neuron", layer=1)
    try:
        header, arrays = wire.decode_query_key_record(widget._qk["self/1/0"])
        assert_record_matches_capture(widget.capture, "self", 1, 0, header, arrays)
    finally:
        widget.close()


@pytest.mark.parametrize(
    ("arch", "texts", "forms"),
    [
        # The attention mask of a padded batch row, one row for every query (zeros once the padding is cut away).
        ("bert", ["the cat sat on the mat today", "the cat"], {"bias_key"}),
        # Causal mask.
        ("llama", "the cat sat on the mat", {"bias_diagonal"}),
        # Gemma 2's sliding window of 4 keys: still one value per diagonal.
        ("gemma2", "the cat sat on the mat and it was very happy there", {"bias_diagonal"}),
        # BLOOM's ALiBi grows with the key's position, on top of the causal mask.
        ("bloom", "the cat sat on the mat", {"bias_diagonal", "bias_key"}),
        # DeBERTa's content-to-position terms depend on the query's content: the bias goes whole.
        ("deberta_v2", "the cat sat on the mat", {"bias"}),
    ],
)
def test_each_bias_travels_in_its_smallest_exact_form(tiny_models, widgets, arch, texts, forms):
    model, tokenizer = tiny_models(arch)
    result = capture(model, tokenizer, texts, row=None if isinstance(texts, str) else 1)
    widget = widgets(result, preload_qk_bytes=0)
    n = len(result.tokens)

    for head in range(result.num_heads()):
        header, arrays = served(widget, "self", 1, head)
        assert set(arrays) - {"query", "key"} == forms
        assert_record_matches_capture(result, "self", 1, head, header, arrays)
        assert sum(arrays[form].size for form in forms) <= (n * n if "bias" in forms else 3 * n)


def test_a_whole_bias_over_the_message_limit_gets_an_error_that_says_why(tiny_models, widgets, monkeypatch):
    model, tokenizer = tiny_models("deberta_v2")
    widget = widgets(capture(model, tokenizer, "the cat sat on the mat"), preload_qk_bytes=0)
    monkeypatch.setattr(wire, "MAX_MESSAGE_BYTES", 1000)

    content, buffers = request(widget, "self", 0, 1)

    assert buffers == [] and "more than the 1,000 one message may carry" in content["error"]
    assert "capture a shorter text" in content["error"]
