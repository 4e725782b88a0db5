"""The widget's Python side: traits and their validation, browser updates, chunk requests, payload size."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
import traitlets
from conftest import browser_request, from_browser, make_capture, make_seq2seq_capture, random_stack, token_side
from ipywidgets.widgets.widget import _remove_buffers

from attnwidget import AttentionWidget, Capture, capture, wire
from attnwidget import widget as widget_module
from attnwidget.wire import SELECTION_TRAITS as SELECTION


pytestmark = pytest.mark.usefixtures("recording_comm")


def payload_bytes(widget) -> int:
    """What opening this widget sends: the JSON of the state plus its binary buffers."""
    state, _paths, buffers = _remove_buffers(widget.get_state())
    return len(json.dumps(state)) + sum(memoryview(buffer).nbytes for buffer in buffers)


# -- construction -----------------------------------------------------------------------------
def test_a_widget_carries_the_bundle_meta_and_the_selection(widgets):
    capture = make_capture(layers=2, heads=3, tokens=5)

    widget = widgets(capture, layer=1, head=2, token=4, view="matrix", theme="dark")

    assert widget._esm == widget_module.BUNDLE_JS.read_text() and widget._esm.strip()
    assert widget._css == widget_module.BUNDLE_CSS.read_text()
    assert widget.capture.recorded_stacks == capture.stacks and widget.capture.stack("self") is capture.stack("self")
    head_scores = widget.meta["head_scores"]  # a short capture's heads are scored as it opens (tests/test_head_atlas.py)
    # The stacks derived from the recorded one come after it (tests/test_derived.py).
    assert widget.meta == wire.build_meta(widget.capture, chunks_complete=True, head_scores=head_scores)
    assert (widget.stack, widget.layer, widget.head, widget.token) == ("self", 1, 2, 4)
    assert widget.heads == [0, 1, 2]
    assert (widget.view, widget.theme, widget.pair_filter) == ("matrix", "dark", "all")


def test_every_contract_trait_is_synced():
    synced = set(AttentionWidget.class_traits(sync=True))

    contract = {*SELECTION, "meta", "_chunks", "_thumbs"}
    assert contract <= synced
    for name in contract:
        assert AttentionWidget.class_traits()[name].help, f"trait {name} has no one-line help"


def test_the_comm_opens_with_every_trait_and_the_chunks_and_thumbnails_as_binary_buffers(widgets):
    widget = widgets(make_capture(layers=2, heads=3, tokens=5), derived=False)

    kind, data, buffers = widget.comm.messages[0]

    assert kind == "comm_open"
    assert data["state"]["layer"] == 0 and data["state"]["meta"]["stacks"][0]["name"] == "self"
    sizes = {tuple(path): len(buffer) for path, buffer in zip(data["buffer_paths"], buffers)}
    heads = {("_chunks", f"self/{layer}/{head}"): 5 * 5 for layer in range(2) for head in range(3)}
    assert sizes == {**heads, ("_thumbs", "self/0"): 3 * 5 * 5, ("_thumbs", "self/1"): 3 * 5 * 5}
    assert data["state"].get("_chunks", {}) == {} and data["state"].get("_thumbs", {}) == {}


def test_an_invalid_initial_selection_is_refused_with_the_range(widgets):
    with pytest.raises(traitlets.TraitError, match=r"layer 5 is out of range.*0\.\.1"):
        widgets(make_capture(layers=2), layer=5)
    with pytest.raises(traitlets.TraitError, match="stack 'encoder' does not exist"):
        widgets(make_capture(), stack="encoder")


def test_a_missing_bundle_says_how_to_build_it(monkeypatch, tmp_path):
    monkeypatch.setattr(widget_module, "BUNDLE_JS", tmp_path / "widget.js")

    with pytest.raises(FileNotFoundError, match=r"npm run build") as error:
        AttentionWidget.from_capture(make_capture())
    assert "pip install ." in str(error.value)


def test_from_capture_refuses_something_that_is_not_a_capture():
    with pytest.raises(TypeError, match="expected an attnwidget.Capture, got ndarray"):
        AttentionWidget.from_capture(np.zeros((2, 3, 4, 4)))


# -- validation of Python assignments ----------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("layer", 2, r"layer 2 is out of range: stack 'self' has 2 layers, so layer must be in 0\.\.1"),
        ("layer", -1, r"layer must be in 0\.\.1"),
        ("head", 3, r"head 3 is out of range: stack 'self' has 3 heads, so head must be in 0\.\.2"),
        ("heads", [2, 0], r"heads must be ascending, without repeats, each in 0\.\.2; got \[2, 0\]"),
        ("heads", [0, 0], r"without repeats"),
        ("heads", [0, 3], r"each in 0\.\.2"),
        ("token", 5, r"token 5 is out of range: the 'input' side has 5 tokens, so token must be in 0\.\.4"),
        ("stack", "cross", r"stack 'cross' does not exist; this widget has stacks \['self', 'self·words', 'self·rollout'"),
        ("view", "graph", r"'head', 'model', 'neuron', 'matrix'"),
        ("theme", "blue", r"'auto', 'light', 'dark'"),
        ("pair_filter", "AB", r"pair_filter 'AB' needs a sentence pair"),
        ("layer", "1", r"expected an int"),
        ("token", True, r"token must be an integer index, not True"),
        ("head", False, r"head must be an integer index, not False"),
        ("heads", [True], r"heads must be a list of integer indices, not \[True\]"),
    ],
)
def test_an_invalid_python_assignment_raises_and_changes_nothing(widgets, name, value, message):
    widget = widgets(make_capture(layers=2, heads=3, tokens=5), layer=1, head=1, token=2)
    before = widget.get_state()
    sent = len(widget.comm.messages)

    with pytest.raises(traitlets.TraitError, match=message):
        setattr(widget, name, value)

    assert widget.get_state() == before
    assert len(widget.comm.messages) == sent


def test_valid_python_assignments_reach_the_browser(widgets):
    widget = widgets(make_capture(layers=2, heads=3, tokens=5, segment_b_start=2))

    widget.layer = 1
    widget.heads = [0, 2]
    widget.token = None
    widget.pair_filter = "BA"

    assert widget.comm.updates() == [{"layer": 1}, {"heads": [0, 2]}, {"pair_filter": "BA"}]


def test_changing_the_stack_pulls_the_selection_into_its_ranges(widgets):
    widget = widgets(make_seq2seq_capture(), stack="encoder", layer=2, head=3, token=6, pair_filter="AB")

    widget.stack = "cross"  # 2 layers, queries are the 4 decoder tokens, no pair on the decoder side

    assert (widget.layer, widget.head, widget.token, widget.pair_filter) == (1, 3, None, "all")
    updates = widget.comm.updates()
    assert updates[0] == {"stack": "cross"}
    assert updates[1] == {"layer": 1, "token": None, "pair_filter": "all"}, "the re-fit goes out as one update"


def test_changing_the_stack_keeps_a_layer_that_still_fits_and_drops_a_token_of_another_side(widgets):
    widget = widgets(make_seq2seq_capture(), stack="decoder", layer=1, token=3)

    widget.stack = "encoder"  # the stack-fit rule of tests/fixtures/stack_fit.json

    assert (widget.layer, widget.token) == (1, None)


# -- changes from the browser -------------------------------------------------------------------
def test_a_browser_change_fires_python_observers(widgets):
    widget = widgets(make_capture(layers=2, heads=3, tokens=5))
    seen = []
    widget.observe(lambda change: seen.append((change.name, change.new)), names=["layer", "head", "token"])

    from_browser(widget, {"layer": 1})
    from_browser(widget, {"head": 2, "token": 3})

    assert sorted(seen) == [("head", 2), ("layer", 1), ("token", 3)]
    assert (widget.layer, widget.head, widget.token) == (1, 2, 3)
    assert widget.comm.updates() == [], "a value the browser sent is not sent back to it"


def test_an_invalid_browser_value_is_rejected_the_old_value_kept_and_resent(widgets, caplog):
    widget = widgets(make_capture(layers=2, heads=3, tokens=5), layer=1)
    seen = []
    widget.observe(lambda change: seen.append(change.name), names=SELECTION)

    with caplog.at_level(logging.WARNING, logger="attnwidget.widget"):
        from_browser(widget, {"layer": 7})

    assert widget.layer == 1
    assert seen == []
    assert widget.comm.updates() == [{"layer": 1}], "the browser is put back in step"
    assert "layer=7" in caplog.text and "0..1" in caplog.text


def test_one_bad_value_in_a_browser_update_does_not_block_the_good_ones(widgets):
    widget = widgets(make_capture(layers=2, heads=3, tokens=5))

    from_browser(widget, {"layer": 1, "heads": [2, 1], "token": 4, "view": "nonsense"})

    assert (widget.layer, widget.token, widget.heads, widget.view) == (1, 4, [0, 1, 2], "head")
    resent = widget.comm.updates()
    assert len(resent) == 1 and resent[0] == {"heads": [0, 1, 2], "view": "head"}


def test_a_browser_update_applies_the_stack_before_the_layer(widgets):
    widget = widgets(make_seq2seq_capture(), stack="decoder")

    from_browser(widget, {"layer": 2, "stack": "encoder"})  # layer 2 exists only in the encoder

    assert (widget.stack, widget.layer) == ("encoder", 2)


def test_the_browser_cannot_overwrite_what_only_python_writes(widgets, caplog):
    capture = make_capture()
    widget = widgets(capture)
    meta, chunks = widget.meta, dict(widget._chunks)

    with caplog.at_level(logging.WARNING, logger="attnwidget.widget"):
        from_browser(widget, {"meta": {"stacks": []}, "_chunks": {}})

    assert widget.meta == meta and widget._chunks == chunks
    assert "only Python writes it" in caplog.text
    kind, data, buffers = widget.comm.messages[-1]
    assert data["method"] == "update" and data["state"]["meta"] == meta
    chunk_buffers = [buffer for path, buffer in zip(data["buffer_paths"], buffers) if path[0] == "_chunks"]
    assert chunk_buffers == list(chunks.values())


@pytest.mark.parametrize("name", ["_esm", "_css", "_view_name", "_model_name", "_view_module", "_anywidget_id"])
def test_the_browser_cannot_overwrite_the_bundle_or_anywidgets_names(widgets, name, caplog):
    widget = widgets(make_capture())
    before = getattr(widget, name)

    with caplog.at_level(logging.WARNING, logger="attnwidget.widget"):
        from_browser(widget, {name: "export default { render() { alert(1) } }"})

    assert getattr(widget, name) == before
    assert "only Python writes it" in caplog.text
    assert widget.comm.updates() == [{name: before}], "the browser is put back in step"


def test_bools_from_the_browser_are_not_indices_even_where_they_equal_the_current_one(widgets):
    widget = widgets(make_capture(layers=2, heads=3, tokens=5))  # head 0, heads [0, 1, 2]: False == 0, True == 1

    from_browser(widget, {"head": False, "layer": False, "heads": [True], "token": True})

    assert type(widget.head) is int and type(widget.layer) is int and widget.token is None
    assert widget.heads == [0, 1, 2] and not any(isinstance(h, bool) for h in widget.heads)
    assert sorted(key for update in widget.comm.updates() for key in update) == ["head", "heads", "layer", "token"]


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def test_a_deeply_nested_browser_value_is_rejected_without_recursing(widgets, caplog):
    widget = widgets(make_capture())

    with caplog.at_level(logging.WARNING, logger="attnwidget.widget"):
        from_browser(widget, {"heads": nested(100_000), "layer": {"a": 1}, "token": 2})

    assert widget.heads == [0, 1, 2] and widget.layer == 0 and widget.token == 2
    assert caplog.text.count("no selection value is nested") == 2


def test_a_huge_browser_value_is_logged_in_a_few_hundred_characters(widgets, caplog):
    widget = widgets(make_capture())

    with caplog.at_level(logging.WARNING, logger="attnwidget.widget"):
        from_browser(widget, {"view": "x" * 1_000_000, "meta": "y" * 1_000_000})

    assert widget.view == "head"
    assert len(caplog.text) < 2_000, "the 1 MB values are quoted in a few hundred characters, not whole"
    assert "ignored view='xxx" in caplog.text


def test_a_browser_value_of_the_wrong_type_is_rejected(widgets):
    widget = widgets(make_capture())

    from_browser(widget, {"token": "3", "heads": None})

    assert widget.token is None and widget.heads == [0, 1, 2]


# -- chunk requests ------------------------------------------------------------------------------
def test_a_chunk_request_is_answered_with_the_head_as_one_buffer(widgets):
    capture = make_seq2seq_capture()
    widget = widgets(capture)

    content, buffers = browser_request(widget, {"kind": "request", "id": 7, "what": "attention", "stack": "cross",
                                                "layer": 1, "head": 3})

    assert content == {"kind": "response", "id": 7, "what": "attention", "stack": "cross", "layer": 1, "head": 3,
                       "dtype": "uint8", "shape": [4, 7]}
    assert len(buffers) == 1
    np.testing.assert_allclose(wire.dequantize_attention(buffers[0], content["shape"]),
                               capture.layer_attention(1, "cross")[3], atol=1 / 510 + 1e-7)


@pytest.mark.parametrize(
    ("request_content", "message"),
    [
        ({"what": "attention", "stack": "nope", "layer": 0}, "no stack 'nope'"),
        ({"what": "attention", "stack": "cross", "layer": 2}, r"layer must be an integer in 0\.\.1"),
        ({"what": "attention", "stack": "cross", "layer": True}, r"got True"),
        ({"what": "attention", "stack": "cross"}, r"got None"),
        ({"what": "attention", "stack": "cross", "layer": 1}, r"head must be an integer in 0\.\.3 .*got None"),
        ({"what": "attention", "stack": "cross", "layer": 1, "head": 4}, r"head must be an integer in 0\.\.3"),
        ({"what": "queries", "stack": "cross", "layer": 0}, "unknown request what='queries'"),
    ],
)
def test_a_bad_chunk_request_gets_an_error_reply(widgets, request_content, message):
    widget = widgets(make_seq2seq_capture())

    content, buffers = browser_request(widget, {"kind": "request", "id": 3, **request_content})

    assert content["kind"] == "response" and content["id"] == 3
    assert content.keys() == {"kind", "id", "error"}
    assert re.search(message, content["error"])
    assert buffers == []


def test_a_top_keys_request_is_answered_with_torch_topk_of_the_head(widgets):
    capture = make_seq2seq_capture()
    widget = widgets(capture)

    content, buffers = browser_request(widget, {"kind": "request", "id": 9, "what": "top_keys", "stack": "cross",
                                                "layer": 1, "head": 2, "k": 3})

    assert content == {"kind": "response", "id": 9, "what": "top_keys", "stack": "cross", "layer": 1, "head": 2,
                       "k": 3, "index_dtype": "uint16", "dtype": "uint8", "shape": [4, 3]}
    indices, weights = wire.split_top_keys(buffers[0], (4, 3), n_key=7)
    expected = torch.topk(torch.from_numpy(capture.head_attention(1, 2, "cross")), 3, dim=-1)
    np.testing.assert_array_equal(indices, expected.indices.numpy())
    np.testing.assert_allclose(weights, expected.values.numpy(), atol=1 / 510 + 1e-7)


def test_a_long_heads_top_keys_are_capped_and_far_smaller_than_its_chunk(widgets):
    capture = make_capture(layers=1, heads=1, tokens=2048)
    widget = widgets(capture, preload_bytes=0)

    content, buffers = browser_request(widget, {"kind": "request", "id": 4, "what": "top_keys", "stack": "self",
                                                "layer": 0, "head": 0, "k": 10**9})

    assert content["k"] == wire.TOP_KEYS_MAX and content["shape"] == [2048, wire.TOP_KEYS_MAX]
    assert len(buffers[0]) == 2048 * wire.TOP_KEYS_MAX * 3 < wire.MAX_MESSAGE_BYTES
    indices, _ = wire.split_top_keys(buffers[0], (2048, wire.TOP_KEYS_MAX), n_key=2048)
    strongest = np.argmax(capture.head_attention(0, 0), axis=-1)
    np.testing.assert_array_equal(indices[:, 0], strongest)


def test_top_key_indices_widen_to_uint32_only_past_uint16():
    assert [wire.top_key_index_dtype(n) for n in (7, 2**16, 2**16 + 1)] == ["uint16", "uint16", "uint32"]


@pytest.mark.parametrize(
    ("request_content", "message"),
    [
        ({"k": 0}, r"k must be a positive integer .*at most 64.*got 0"),
        ({"k": "5"}, r"k must be a positive integer .*got '5'"),
        ({}, r"k must be a positive integer .*got None"),
        ({"k": 4, "head": 9}, r"head must be an integer in 0\.\.3"),
    ],
)
def test_a_bad_top_keys_request_gets_an_error_reply(widgets, request_content, message):
    widget = widgets(make_seq2seq_capture())

    content, buffers = browser_request(
        widget,
        {"kind": "request", "id": 6, "what": "top_keys", "stack": "cross", "layer": 0, "head": 1, **request_content},
    )

    assert content.keys() == {"kind", "id", "error"} and content["id"] == 6
    assert re.search(message, content["error"])
    assert buffers == []


def test_a_request_with_a_deeply_nested_layer_still_gets_an_error_reply(widgets, caplog):
    widget = widgets(make_seq2seq_capture())

    with caplog.at_level(logging.WARNING):
        content, buffers = browser_request(
            widget, {"kind": "request", "id": 5, "what": "attention", "stack": "cross", "layer": nested(100_000)}
        )

    assert content["id"] == 5 and "layer must be an integer in 0..1" in content["error"] and buffers == []
    assert len(content["error"]) < 500 and len(caplog.text) < 2_000


def test_custom_messages_that_are_not_requests_are_left_alone(widgets):
    widget = widgets(make_capture())

    assert browser_request(widget, {"kind": "something-else"}) is None
    assert browser_request(widget, ["not", "a", "dict"]) is None


# -- preload budget ------------------------------------------------------------------------------
def test_a_capture_within_the_budget_is_preloaded_whole(widgets):
    capture = make_seq2seq_capture()

    widget = widgets(capture, preload_bytes=wire.attention_bytes(capture), derived=False)

    assert widget.meta["chunks_complete"] is True
    assert sorted(widget._chunks) == sorted(wire.all_head_keys(capture))
    for key, chunk in widget._chunks.items():
        assert chunk == wire.head_chunk(capture, *wire.parse_head_key(key))[0]


def test_a_capture_over_the_budget_preloads_only_the_selected_head_and_every_thumbnail(widgets):
    capture = make_seq2seq_capture()

    widget = widgets(capture, stack="cross", layer=1, head=2, preload_bytes=wire.attention_bytes(capture) - 1,
                     derived=False)

    assert widget.meta["chunks_complete"] is False
    assert list(widget._chunks) == ["cross/1/2"]
    assert widget._thumbs == wire.all_thumbnails(capture)
    _state, paths, buffers = _remove_buffers(widget.get_state())
    assert [len(buffer) for path, buffer in zip(paths, buffers) if path[0] == "_chunks"] == [4 * 7]


def test_a_head_larger_than_the_budget_is_left_for_the_browser_to_ask_for(widgets):
    capture = make_seq2seq_capture()

    widget = widgets(capture, stack="cross", layer=1, preload_bytes=4 * 7 - 1)

    assert widget._chunks == {} and widget.meta["chunks_complete"] is False


# -- message size ----------------------------------------------------------------------------------
def test_no_message_is_over_64_mib_though_a_layer_is(widgets):
    """32 heads over 1500 tokens: one layer is 72 MB, more than one message may carry; each head is 2.25 MB."""
    from attnwidget.capturing import LayerRecord, StackRecord

    side = token_side("input", 1500)
    rng = np.random.default_rng(0)
    query, key = rng.normal(size=(32, 1500, 8)).astype(np.float32), rng.normal(size=(8, 1500, 8)).astype(np.float32)
    layer = LayerRecord(query=query, key=key, scale=8**-0.5)
    capture = Capture([side], [StackRecord("self", "input", "input", [layer], np.arange(32) // 4, [0])])
    assert wire.attention_bytes(capture) > wire.MAX_MESSAGE_BYTES

    widget = widgets(capture, preload_bytes=wire.MAX_MESSAGE_BYTES)

    _kind, _data, buffers = widget.comm.messages[0]
    assert sum(len(buffer) for buffer in buffers) <= wire.MAX_MESSAGE_BYTES
    for head in (0, 31):
        content, buffers = browser_request(
            widget, {"kind": "request", "id": head, "what": "attention", "stack": "self", "layer": 0, "head": head}
        )
        assert content["shape"] == [1500, 1500] and len(buffers[0]) == 1500 * 1500


def test_an_answer_over_the_message_limit_is_an_error_that_says_what_to_do(widgets, monkeypatch):
    widget = widgets(make_seq2seq_capture())
    monkeypatch.setattr(wire, "MAX_MESSAGE_BYTES", 4 * 7 - 1)

    content, buffers = browser_request(
        widget, {"kind": "request", "id": 1, "what": "attention", "stack": "cross", "layer": 0, "head": 0}
    )

    assert buffers == [] and re.search(r"28 bytes, more than the 27 one message may carry.*shorter text", content["error"])


# -- payload size ----------------------------------------------------------------------------------
def test_a_short_capture_goes_up_front_whole_at_one_byte_per_value_plus_thumbnails(widgets):
    """MiniLM's shape at 128 tokens: 6 layers x 12 heads x 128 x 128 (synthetic values), within the preload budget."""
    side = token_side("input", 128)
    capture = Capture([side], [random_stack(np.random.default_rng(0), "self", side, side, layers=6, heads=12)])
    # The derived stacks go too: its words (these plain tokens are one word each) and the rollout with its words.
    heads = 12 + 12 + 1 + 1
    values = 6 * heads * 128 * 128

    widget = widgets(capture)

    assert widget.meta["chunks_complete"] is True
    _state, paths, buffers = _remove_buffers(widget.get_state())
    assert sum(len(buffer) for path, buffer in zip(paths, buffers) if path[0] == "_chunks") == values
    assert sum(len(buffer) for path, buffer in zip(paths, buffers) if path[0] == "_thumbs") == 6 * heads * 64 * 64


def test_up_front_a_long_capture_sends_thumbnails_and_the_selected_head(widgets):
    """MiniLM's shape at 512 tokens (synthetic values): the issue's target is at most 0.2 bytes per value up front."""
    side = token_side("input", 512)
    capture = Capture([side], [random_stack(np.random.default_rng(0), "self", side, side, layers=6, heads=12)])
    values = 6 * 12 * 512 * 512

    widget = widgets(capture, layer=2, head=7)

    assert widget.meta["chunks_complete"] is False and list(widget._chunks) == ["self/2/7"]
    assert payload_bytes(widget) / values < 0.2


# -- the real model ----------------------------------------------------------------------------------
LONG_TEXT = " ".join(
    ["The committee reviewed the proposal in detail before the vote, and several members asked whether"
     " the budget could cover the maintenance of the new bridge over the next twenty years."] * 40
)


def test_a_model_widget_loads_the_tokenizer_saved_with_the_model(minilm):
    model, tokenizer = minilm
    expected = tokenizer("The cat sat on the mat.", "It was warm.")["input_ids"]

    widget = AttentionWidget(model, "The cat sat on the mat.", text_pair="It was warm.", layer=3, view="model",
                             attention_dtype="float16")
    try:
        assert widget.capture.token_ids == expected
        assert widget.meta["sides"]["input"]["tokens"][0] == "[CLS]"
        assert widget.meta["sides"]["input"]["segment_b_start"] == expected.index(102) + 1
        assert [(s["layers"], s["heads"]) for s in widget.meta["stacks"] if s["derived"] is None] == [(6, 12)]
        assert (widget.layer, widget.view) == (3, "model")
        assert widget.capture.layer_attention(0).dtype == np.float16, "capture options reach attnwidget.capture"
        widget.pair_filter = "AB"  # the pair makes the filter meaningful
    finally:
        widget.close()


def test_a_model_without_a_saved_tokenizer_asks_for_one(tiny_models, tmp_path):
    model, _tokenizer = tiny_models("bert")

    with pytest.raises(ValueError, match=r"no name_or_path.*Pass tokenizer=\.\.\."):
        AttentionWidget(model, "Hello world")
    model.config._name_or_path = str(tmp_path)
    with pytest.raises(ValueError, match=rf"(?s)could not load a tokenizer for '{re.escape(str(tmp_path))}'.*Pass tokenizer="):
        AttentionWidget(model, "Hello world")


def test_a_model_widget_with_an_explicit_tokenizer(tiny_models):
    model, tokenizer = tiny_models("bart")

    widget = AttentionWidget(model, "Hello world", tokenizer, decoder_text="Hi there", stack="cross")
    try:
        assert [s["name"] for s in widget.meta["stacks"] if s["derived"] is None] == ["encoder", "decoder", "cross"]
        assert widget.stack == "cross" and "cross/0/0" in widget._chunks
    finally:
        widget.close()


def test_a_model_named_by_its_folder_loads_from_it(tiny_models, tmp_path):
    model, tokenizer = tiny_models("bert")
    model.save_pretrained(tmp_path / "with-tokenizer")
    tokenizer.save_pretrained(tmp_path / "with-tokenizer")
    model.save_pretrained(tmp_path / "model-only")

    for widget in (
        AttentionWidget(str(tmp_path / "with-tokenizer"), "leaves fall", layer=1),
        AttentionWidget(tmp_path / "model-only", "leaves fall", tokenizer=tokenizer),  # no 'str' has no 'forward'
    ):
        try:
            assert widget.capture.token_ids == tokenizer("leaves fall")["input_ids"]
            assert [(s["layers"], s["heads"]) for s in widget.meta["stacks"] if s["derived"] is None] == [(2, 4)]
            expected = capture(model, tokenizer, "leaves fall").layer_attention(1)
            np.testing.assert_allclose(widget.capture.layer_attention(1), expected, atol=1e-6)
        finally:
            widget.close()
    with pytest.raises(ValueError, match=r"could not load a model from the folder .*model-only.*no tokenizer is saved"):
        AttentionWidget(str(tmp_path / "model-only"), "leaves fall")  # no tokenizer there, none given
    with pytest.raises(ValueError, match="there is no model folder"):
        AttentionWidget(str(tmp_path / "missing"), "leaves fall")


def test_a_model_named_as_on_the_hub_loads_from_the_local_cache_and_downloads_nothing(tiny_models, tmp_path):
    """The cache laid out as the hub client does (as in test_cli.py); a fresh process reads HF_HUB_CACHE."""
    model, tokenizer = tiny_models("bert")
    repo = tmp_path / "hub-cache" / "models--someone--tiny-bert"
    model.save_pretrained(repo / "snapshots" / ("0" * 40))
    tokenizer.save_pretrained(repo / "snapshots" / ("0" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    script = (
        "from attnwidget import AttentionWidget\n"
        "w = AttentionWidget('someone/tiny-bert', 'leaves fall')\n"
        "print(w.meta['stacks'][0]['layers'], w.meta['stacks'][0]['heads'])\n"
        "try:\n"
        "    AttentionWidget('nobody/not-cached', 'leaves fall')\n"
        "except ValueError as error:\n"
        "    print(error)\n"
    )
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub-cache"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    shape, refusal = done.stdout.splitlines()[:2]
    assert shape == "2 4"
    assert "neither a model folder nor a model in your Hugging Face cache" in refusal and "downloads nothing" in refusal


def test_a_tokenizer_passed_as_the_model_says_which_goes_where(tiny_models):
    _model, tokenizer = tiny_models("bert")
    with pytest.raises(TypeError, match=r"tokenizer .* was passed where the model goes.*tokenizer=tokenizer"):
        AttentionWidget(tokenizer, "leaves fall")


@pytest.mark.parametrize(
    ("make", "typo", "suggestion"),
    [
        (lambda **options: AttentionWidget(None, "leaves fall", **options), "layr", "layer"),
        (lambda **options: AttentionWidget(None, "leaves fall", **options), "max_new_token", "max_new_tokens"),
        (lambda **options: AttentionWidget.from_attention(np.full((1, 1, 2, 2), 0.5), ["a", "b"], **options),
         "sentense_b_start", "sentence_b_start"),
        (lambda **options: AttentionWidget.from_capture(make_capture(), **options), "veiw", "view"),
    ],
)  # fmt: skip
def test_an_option_typo_names_the_closest_option_before_any_work(make, typo, suggestion):
    with pytest.raises(TypeError, match=rf"has no option '{typo}' \(did you mean '{suggestion}'\?\); its options are"):
        make(**{typo: 3})


def test_from_attention_with_a_batch_needs_row(widgets):
    attention = np.stack([np.full((2, 3, 4, 4), 0.25), np.eye(4)[None, None].repeat(2, 0).repeat(3, 1)], axis=1)
    tokens = ["[CLS]", "a", "b", "[SEP]"]  # attention: [layers=2, batch=2, heads=3, 4, 4]

    with pytest.raises(ValueError, match=r"holds a batch of 2 rows and one is shown; pick it with row=0\.\.1"):
        AttentionWidget.from_attention(attention, tokens)
    widget = AttentionWidget.from_attention(attention, tokens, row=1, layer=1)
    try:
        np.testing.assert_allclose(widget.capture.layer_attention(0), np.eye(4)[None].repeat(3, 0))
    finally:
        widget.close()


def test_from_attention_shows_output_attentions(minilm_path):
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    model = AutoModel.from_pretrained(minilm_path, attn_implementation="eager").eval()
    inputs = tokenizer("The cat sat.", "It purred.", return_tensors="pt")
    with torch.no_grad():
        attention = model(**inputs, output_attentions=True).attentions
    tokens = tokenizer.convert_ids_to_tokens(inputs["input_ids"][0])

    widget = AttentionWidget.from_attention(attention, tokens, sentence_b_start=6, layer=5, head=11)
    try:
        assert (widget.layer, widget.head) == (5, 11)
        assert widget.meta["sides"]["input"]["segment_b_start"] == 6
        chunk = widget._chunks["self/5/11"]
        np.testing.assert_allclose(wire.dequantize_attention(chunk, (len(tokens), len(tokens))),
                                   attention[5][0, 11].numpy(), atol=1 / 510 + 1e-6)
    finally:
        widget.close()


def test_from_attention_refuses_attention_that_does_not_fit_the_tokens():
    attention = np.full((2, 1, 3, 4, 4), 0.25, dtype=np.float32)  # 4 positions

    with pytest.raises(ValueError, match="tokens"):
        AttentionWidget.from_attention(attention, ["[CLS]", "a", "[SEP]"])
    with pytest.raises(ValueError, match="no attention given"):
        AttentionWidget.from_attention(None, ["a"])


def test_up_front_minilm_at_512_tokens_sends_at_most_a_fifth_of_a_byte_per_value(minilm, widgets):
    model, tokenizer = minilm
    from attnwidget import capture

    result = capture(model, tokenizer, LONG_TEXT, truncation=True)
    assert len(result.tokens) == 512
    widget = widgets(result)
    values = 6 * 12 * 512 * 512

    _state, paths, buffers = _remove_buffers(widget.get_state())
    assert [path for path in paths if path[0] == "_chunks"] == [["_chunks", "self/0/0"]]
    assert payload_bytes(widget) / values < 0.2


def test_thumbnails_of_a_long_capture_show_a_bar_unless_progress_is_off(widgets, capsys, monkeypatch):
    from attnwidget.capturing import progress

    monkeypatch.setattr(progress, "PROGRESS_MIN_SCORES", 1)  # these few tokens as long as 4096 on 32 x 32 heads
    capture = make_seq2seq_capture()
    layers = len(wire.all_chunk_keys(widgets(capture).capture))
    assert f"thumbnails: 100%|██████████| {layers}/{layers}" in capsys.readouterr().err
    widgets(capture, progress=False)
    assert capsys.readouterr().err == ""
