"""The matrix view of a head too long to send whole, in a real JupyterLab: the kernel pools the region on screen
into tiles as the wheel zooms, and at single cells hovering reads the capture's float32 value."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from lab import ARTIFACTS, NotebookPage, browser_page

N = 2100  # one head is 4.4 MB of bytes, past the 4 MiB the matrix fetches whole
# Softmax rows of random scores, with the first key a sink that takes most of each row, as in long decoder inputs.
SHOW_LONG_HEAD = f"""\
import numpy as np
from attnwidget import AttentionWidget
rng = np.random.default_rng(4)
scores = rng.normal(size=(1, 2, {N}, {N})).astype(np.float32) * 2
scores[..., 0] += 9
attention = np.exp(scores - scores.max(-1, keepdims=True))
attention /= attention.sum(-1, keepdims=True)
w = AttentionWidget.from_attention(list(attention), [f"w{{i}}" for i in range({N})], view="matrix", head=1)
w"""
SINGLE_CELL = re.compile(r"^query (\d+) “w\d+” → key (\d+) “w\d+”: (\S+) ")


@pytest.fixture(scope="module")
def notebook(jupyter_server, browser):
    name = jupyter_server.write_notebook("tiles.ipynb", [SHOW_LONG_HEAD])
    with (
        browser_page(browser, "lab-tiles") as (page, errors),
        NotebookPage(page, errors, jupyter_server, name) as notebook,
    ):
        notebook.run_all()
        yield notebook
        notebook.shut_down()


def test_zooming_to_cells_reads_the_kernels_values_from_tiles(notebook):
    view = notebook.page.locator(".attnwidget .aw-matrixview")
    expect(view.locator(".aw-readout")).to_contain_text("Wheel or pinch to zoom")
    assert notebook.execute("print(sorted(w._chunks))") == "[]", "the head must not travel whole"
    # The sink column of key 0 does not wash out the rest: long inputs open on the scale past key 0.
    expect(view.get_by_label("Full colour at", exact=True)).to_have_value("rest")
    overlay = view.locator("canvas.aw-overlay")
    overlay.scroll_into_view_if_needed()
    box = overlay.bounding_box()
    x, y = box["x"] + box["width"] * 0.4, box["y"] + min(box["height"], 600) * 0.5
    notebook.page.mouse.move(x, y)
    for _ in range(12):
        notebook.page.mouse.wheel(0, -400)
    # The tile of single cells arrives from the kernel; until then the readout names pooled blocks.
    readout = view.locator(".aw-readout")
    for nudge in range(50):
        notebook.page.mouse.move(x + nudge % 2, y)
        match = SINGLE_CELL.match(readout.text_content() or "")
        if match:
            break
        notebook.page.wait_for_timeout(100)
    assert match, f"no single cell under the pointer: {readout.text_content()}"
    q, k, shown = int(match[1]), int(match[2]), float(match[3])
    expected = float(notebook.execute(f"print(repr(float(w.capture.head_attention(0, 1)[{q}, {k}])))"))
    assert abs(shown - expected) <= 1e-5 * expected, f"cell ({q}, {k}): shown {shown}, kernel {expected}"
    assert expected < 1 / 510, "a weight a byte would round to 0 keeps its digits"
    notebook.page.screenshot(path=ARTIFACTS / "lab-matrix-tiles-zoomed.png")
    notebook.errors.assert_no_uncaught()
