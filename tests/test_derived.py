"""Derived stacks (capturing/derived.py): the rollout and word-level stacks a widget adds, computed on demand, equal
to `Capture.rollout` and `Capture.word_attention`, linked to the selection, served and exported like recorded ones."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import traitlets
from conftest import WORD_TEXT, browser_request, from_browser, make_capture, make_seq2seq_capture, tiny_llama

from attnwidget import AttentionWidget, capture, wire
from attnwidget.capturing import derived

pytestmark = pytest.mark.usefixtures("recording_comm")

PAIR = ("the leaves of the old oak fall slowly", "unbelievable tokenization")


@pytest.fixture(scope="module")
def minilm_capture(minilm):
    model, tokenizer = minilm
    return capture(model, tokenizer, *PAIR)


def test_the_rollout_stack_has_one_head_per_layer_the_rollout_through_it(widgets, minilm_capture):
    widget = widgets(minilm_capture)
    shown = widget.capture
    assert shown.num_heads("self·rollout") == 1 and shown.num_layers("self·rollout") == 6
    # Read the last layer first: the earlier ones then come from what it kept, and still equal the rollout.
    for layer in (5, 0, 3, 4):
        head = shown.head_attention(layer, 0, "self·rollout")
        np.testing.assert_array_equal(head, minilm_capture.rollout("self", layer))
        np.testing.assert_allclose(head.sum(axis=1), 1, rtol=0, atol=1e-12)
    # What the browser gets of it: the chunk's bytes, and the thumbnail of the one head.
    content, (chunk,) = browser_request(
        widget, {"kind": "request", "id": 1, "what": "attention", "stack": "self·rollout", "layer": 5, "head": 0}
    )
    n = len(minilm_capture.tokens)
    assert content["shape"] == [n, n]
    np.testing.assert_allclose(wire.dequantize_attention(chunk, (n, n)), minilm_capture.rollout(), atol=1 / 510)


def test_the_words_stack_is_the_word_attention_of_every_head(widgets, minilm_capture):
    widget = widgets(minilm_capture)
    shown = widget.capture
    groups = minilm_capture.word_groups()
    assert len(groups) < len(minilm_capture.tokens), "WordPiece splits some of these words"
    side = widget.meta["sides"]["input·words"]
    assert side["tokens"] == groups.labels and "unbelievable" in side["tokens"]
    assert side["special"] == groups.special and side["words"] == {"of": "input", "starts": groups.starts.tolist()}
    assert side["segment_b_start"] == groups.starts.tolist().index(minilm_capture.segment_b_start)
    for layer, head in ((0, 0), (5, 11)):
        words = shown.head_attention(layer, head, "self·words")
        np.testing.assert_allclose(words, minilm_capture.word_attention(layer, head), rtol=0, atol=1e-6)
        np.testing.assert_allclose(words.sum(axis=1), 1, rtol=0, atol=1e-5)
    rollout_words = shown.head_attention(2, 0, "self·rollout·words")
    np.testing.assert_allclose(rollout_words.sum(axis=1), 1, rtol=0, atol=1e-5)
    assert [stack["derived"] for stack in widget.meta["stacks"]] == [
        None,
        {"from": "self", "measure": "attention", "words": True},
        {"from": "self", "measure": "rollout", "words": False},
        {"from": "self", "measure": "rollout", "words": True},
        {"from": "self", "measure": "value", "words": False},
        {"from": "self", "measure": "value", "words": True},
    ]


@pytest.mark.parametrize("tokenizer_name", ["byte_level_bpe", "llama_sentencepiece"])
def test_word_level_opens_on_the_words_of_byte_level_bpe_and_sentencepiece(widgets, request, tokenizer_name):
    tokenizer = request.getfixturevalue(tokenizer_name)
    result = capture(tiny_llama(len(tokenizer)), tokenizer, WORD_TEXT)
    assert len(result.tokens) > len(WORD_TEXT.split()) + 1, "some words are split into pieces"

    widget = widgets(result, word_level=True, token=2)

    assert widget.stack == "self·words" and widget.token == 2
    words = [word for word, special in zip(widget.meta["sides"]["input·words"]["tokens"],
                                           widget.meta["sides"]["input·words"]["special"]) if not special]  # fmt: skip
    assert words == WORD_TEXT.split()
    np.testing.assert_allclose(widget.capture.head_attention(0, 3, "self·words"), result.word_attention(0, 3), atol=1e-6)


def test_the_token_moves_to_its_word_and_back_to_the_words_first_token(widgets, minilm_capture):
    widget = widgets(minilm_capture)
    starts = minilm_capture.word_groups().starts.tolist()
    piece = next(i for i, raw in enumerate(minilm_capture.raw_tokens) if raw.startswith("##"))
    word = starts.index(max(start for start in starts if start <= piece))
    widget.token = piece

    widget.stack = "self·rollout·words"  # from Python
    assert (widget.token, widget.head, widget.heads) == (word, 0, [0])

    from_browser(widget, {"stack": "self"})  # from the page
    assert (widget.stack, widget.token) == ("self", starts[word]), "a word becomes its first token"
    assert widget.heads == [0], "the rollout's one head stays visible"


def test_head_scores_are_of_the_recorded_stacks_unless_asked(widgets):
    widget = widgets(make_capture(layers=2, heads=3))
    assert set(widget.head_scores(progress=False)["stack"]) == {"self"}
    words = widget.head_scores(["self·words"], progress=False)
    assert set(words["stack"]) == {"self·words"} and len(words) == 2 * 3


def test_derived_false_shows_the_recorded_stacks_and_word_level_only_their_words(widgets):
    seq2seq = make_seq2seq_capture()
    assert widgets(seq2seq, derived=False).capture.stacks == ("encoder", "decoder", "cross")
    words_only = widgets(seq2seq, derived=False, word_level=True, stack="cross")
    assert words_only.stack == "cross·words"
    assert words_only.capture.stacks == ("encoder", "decoder", "cross", "encoder·words", "decoder·words", "cross·words")
    assert words_only.capture.stack_tokens("cross·words")[0].name == "decoder·words", "cross words: both sides' words"
    assert "cross·rollout" not in widgets(seq2seq).capture.stacks, "rollout follows a sequence back to itself only"
    shown_again = widgets(words_only.capture, derived=False)  # a widget's capture, with its derived stacks
    assert shown_again.capture.stacks == ("encoder", "decoder", "cross")


def test_large_captures_get_derived_stacks_only_when_asked(widgets, monkeypatch):
    monkeypatch.setattr(derived, "MAX_DERIVED_VALUES", 2 * 3 * 5 * 5 - 1)  # one value short of the capture's
    assert widgets(make_capture(tokens=5)).capture.stacks == ("self",)
    assert widgets(make_capture(tokens=5), word_level=True).capture.stacks == ("self", "self·words")
    asked = widgets(make_capture(tokens=5), derived=True).capture.stacks
    assert asked == ("self", "self·words", "self·rollout", "self·rollout·words")


def test_bad_input_says_what_to_do(widgets):
    with pytest.raises(ValueError, match=r"stack 'encoder' does not exist; this widget has stacks \['self'\]"):
        widgets(make_capture(), word_level=True, stack="encoder")
    widget = widgets(make_capture())
    with pytest.raises(traitlets.TraitError, match="stack 'self·value' does not exist"):
        widget.stack = "self·value"
    reply, _ = browser_request(
        widget, {"kind": "request", "id": 3, "what": "query_key", "stack": "self·words", "layer": 0, "head": 0}
    )
    assert "has no queries or keys; the neuron view shows stack 'self'" in reply["error"]
    with pytest.raises(ValueError, match="computed from stack 'self' and has no queries or keys of its own"):
        widget.capture.query_key(0, "self·rollout")


def test_a_rollout_keeps_a_bounded_number_of_products(monkeypatch):
    result = make_capture(layers=6, heads=2, tokens=8)
    monkeypatch.setattr(derived, "ROLLOUT_CACHE_BYTES", 2 * 8 * 8 * 8)  # two float64 8 x 8 products
    chain = derived.MEASURES[derived.ROLLOUT].head_function(result, "self")
    for layer in (5, 1, 4):
        np.testing.assert_array_equal(chain(layer, 0), result.rollout("self", layer))
        assert len(chain._kept) <= 2


def test_an_export_opens_on_the_words_stack_with_its_heads(widgets, minilm_capture):
    widget = widgets(minilm_capture, word_level=True, layer=4, head=7)
    page = widget.to_html(size_budget=None)
    state = json.loads(re.search(r"<script type=\"application/json\" data-attnwidget-export>(.*?)</script>", page, re.S)[1])
    assert (state["traits"]["stack"], state["traits"]["layer"], state["traits"]["head"]) == ("self·words", 4, 7)
    chunks = list(state["binary"]["_chunks"])
    assert chunks[0] == "self·words/4/7", "the head on screen first"
    assert set(chunks) == set(wire.all_head_keys(widget.capture)) and set(state["binary"]["_qk"]) == {
        key for key in chunks if key.startswith("self/")
    }, "every head, and the neuron view's records of the recorded ones"
    assert state["traits"]["meta"]["stacks"][1]["derived"] == {"from": "self", "measure": "attention", "words": True}
