"""Issue 10's long context: a random 32-layer × 32-head Llama on 4096 tokens, in a real JupyterLab and in its export
opened offline. The widget opens; a click on another head sets `w.head` and draws it from the kernel's tiles; the
matrix zooms down to single cells whose readout is the kernel's value; `w.layer = 31` from Python shows layer 31.

Each switch's time, click to painted map, goes to artifacts/long-context-timings.json for the session note: the
issue asks for 300 ms (head switch in Lab, round trip included) and 2 s (opening the export); timing is never
asserted here, since the machine may be busy.
"""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from lab import ARTIFACTS, LOAD_LONG_LLAMA, LONG_TOKENS, MAP_PAINTED, SWITCH_AND_TIME, running_notebook

LAYERS = HEADS = 32
SHOW_WIDGET = "w = AttentionWidget(model, text, tokenizer=tokenizer, view='matrix')\nw"
NOTEBOOK_TIMEOUT_MS = 1_500_000  # capture and every head's thumbnail: minutes on 2 busy cores
MAP_TIMEOUT_MS = 60_000
SINGLE_CELL = re.compile(r"^query (\d+) “[^”]*” → key (\d+) “[^”]*”: (\S+)")
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def notebook(jupyter_server, browser):
    cells = [LOAD_LONG_LLAMA, SHOW_WIDGET]
    with running_notebook(browser, jupyter_server, "long.ipynb", cells, timeout_ms=NOTEBOOK_TIMEOUT_MS) as notebook:
        yield notebook
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "long-context-timings.json").write_text(json.dumps(TIMINGS, indent=2))


@pytest.fixture
def widget(notebook):
    yield notebook.page.locator(".attnwidget")
    notebook.errors.assert_no_uncaught()


def zoom_to_a_cell(page, view) -> tuple[int, int, float]:
    """Wheel the matrix down to single cells under the pointer; (query, key, value shown) of the cell there."""
    overlay = view.locator("canvas.aw-overlay")
    overlay.scroll_into_view_if_needed()
    box = overlay.bounding_box()
    x, y = box["x"] + box["width"] * 0.6, box["y"] + min(box["height"], 600) * 0.7
    page.mouse.move(x, y)
    for _ in range(14):
        page.mouse.wheel(0, -400)
    readout = view.locator(".aw-readout")
    for nudge in range(100):  # until the single cells' tile has come and the readout names one cell
        page.mouse.move(x + nudge % 2, y)
        match = SINGLE_CELL.match(readout.text_content() or "")
        if match:
            return int(match[1]), int(match[2]), float(match[3])
        page.wait_for_timeout(100)
    raise AssertionError(f"no single cell under the pointer: {readout.text_content()}")


def test_the_widget_opens_on_4096_tokens_of_32_layers_and_heads(notebook, widget):
    expect(widget.get_by_role("button", name=re.compile(r"^Head \d+$"))).to_have_count(HEADS)
    expect(widget.get_by_label("Layer", exact=True).locator("option")).to_have_count(LAYERS)
    notebook.page.wait_for_function(MAP_PAINTED, timeout=MAP_TIMEOUT_MS)
    # Nothing travelled whole: a head is 16 MiB at this length, past what goes up front.
    assert notebook.execute("print(len(w.capture.tokens), len(w._chunks), len(w._thumbs))") == f"{LONG_TOKENS} 0 {LAYERS}"


def test_a_click_on_another_head_sets_w_head_and_draws_it(notebook, widget):
    before = widget.locator(".aw-matrix canvas").first.screenshot()
    TIMINGS["head switch in Lab, ms"] = notebook.page.evaluate(SWITCH_AND_TIME, "Head 9")
    assert notebook.execute("print(w.head)") == "9"
    assert widget.locator(".aw-matrix canvas").first.screenshot() != before, "head 9 drew the same map as head 0"
    TIMINGS["second head switch in Lab, ms"] = notebook.page.evaluate(SWITCH_AND_TIME, "Head 17")
    assert notebook.execute("print(w.head)") == "17"


def test_zooming_the_matrix_to_a_cell_reads_the_kernels_value(notebook, widget):
    view = widget.get_by_role("region", name="Matrix view")
    q, k, shown = zoom_to_a_cell(notebook.page, view)
    expected = float(notebook.execute(f"print(repr(float(w.capture.head_attention(w.layer, w.head)[{q}, {k}])))"))
    assert abs(shown - expected) <= 1e-5 * expected, f"cell ({q}, {k}): shown {shown}, kernel {expected}"
    notebook.page.screenshot(path=ARTIFACTS / "lab-long-context-zoomed.png")
    view.get_by_role("button", name="Whole map").click()


def test_layer_31_set_from_python_shows_in_the_page(notebook, widget):
    before = widget.locator(".aw-matrix canvas").first.screenshot()
    notebook.execute("w.layer = 31")
    expect(widget.get_by_label("Layer", exact=True)).to_have_value("31")
    notebook.page.wait_for_function(MAP_PAINTED, timeout=MAP_TIMEOUT_MS)
    assert widget.locator(".aw-matrix canvas").first.screenshot() != before, "layer 31 drew the same map as layer 0"


def test_the_export_opens_offline_draws_a_clicked_head_and_zooms(notebook, jupyter_server, open_offline):
    path = jupyter_server.root / "long.html"
    notebook.execute(f"w.to_html({str(path)!r})")
    state = json.loads(re.search(r"data-attnwidget-export>(.*?)</script>", path.read_text(), re.S)[1])
    included = sorted(int(key.split("/")[2]) for key in state["binary"]["_chunks"] if key.startswith("self/31/"))
    focused = state["traits"]["head"]
    assert focused in included and len(included) > 1, f"the export's heads of layer 31: {included}"

    offline = open_offline(path)
    try:
        offline.page.wait_for_function(MAP_PAINTED, timeout=MAP_TIMEOUT_MS, polling="raf")
    finally:
        offline.page.screenshot(path=ARTIFACTS / "export-long-context-opened.png")
    TIMINGS["export: navigation to painted map, ms"] = offline.page.evaluate("performance.now()")
    TIMINGS["export size, MB"] = path.stat().st_size / 1e6
    other = next(head for head in included if head != focused)
    TIMINGS["head switch in the export, ms"] = offline.page.evaluate(SWITCH_AND_TIME, f"Head {other}")
    view = offline.page.get_by_role("region", name="Matrix view")
    expect(view.locator(".aw-status")).to_have_text("")
    q, k, shown = zoom_to_a_cell(offline.page, view)
    # The export holds the head as bytes: the readout is the byte's value, p rounded to 1/255, to 3 decimals.
    expected = notebook.execute(f"print(round(float(w.capture.head_attention(31, {other})[{q}, {k}]) * 255) / 255)")
    assert abs(shown - float(expected)) <= 5e-4, f"cell ({q}, {k}) of head {other}: shown {shown}, kernel {expected}"
    offline.page.screenshot(path=ARTIFACTS / "export-long-context-zoomed.png")
