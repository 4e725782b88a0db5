"""Value-weighted attention in an exported MiniLM page, offline: Weights -> value-weighted draws each query row's
share of the weighted norm, whose value under the pointer is Python's `capture.value_weighted` divided by its row sum."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from conftest import HEAD, INKED_PIXELS, LAYER
from widget_checks import matrix_readouts


def test_the_matrix_view_switches_to_value_weighted_attention(open_export, minilm_widget):
    page = open_export(minilm_widget)
    widget, view = page.widget, page.page.get_by_role("region", name="Matrix view")
    widget.get_by_label("Weights", exact=True).select_option(label="value-weighted")
    widget.get_by_role("button", name="Matrix", exact=True).click()
    page.page.wait_for_function(f"() => ({INKED_PIXELS})(document.querySelector('.aw-matrixview')) > 0")
    expect(widget.get_by_role("button", name=re.compile(r"^Head \d+$"))).to_have_count(12)

    weighted = minilm_widget.capture.value_weighted(LAYER, HEAD, "self")
    shares = weighted / weighted.sum(axis=1, keepdims=True)
    raw = minilm_widget.capture.head_attention(LAYER, HEAD, "self")
    checked, differs = set(), False
    for query, key, shown in matrix_readouts(page.page, view):
        assert abs(shown - shares[query, key]) <= 1 / 510 + 5e-4, (query, key, shown, shares[query, key])
        differs |= abs(shown - raw[query, key]) > 0.01
        checked.add((query, key))
    assert len(checked) >= 3, f"the pointer should land on cells of the map: {checked}"
    assert differs, "somewhere the value-weighted share is not the raw attention"
