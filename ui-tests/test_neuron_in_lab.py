"""The neuron view in a real JupyterLab on the real MiniLM: the numbers it shows are the capture's,
its heads come from the kernel on request, and its selection is the kernel's."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from lab import ARTIFACTS, LOAD_MINILM, NotebookPage, browser_page
from widget_checks import assert_shown_equal, js_shown

SENTENCE = "leaves fall in autumn"
# preload_qk_bytes=0: nothing of the neuron view travels with the widget, so every head it
# shows is asked of the kernel, which is the path a long text takes.
SHOW_NEURON = (
    f"w = AttentionWidget(model, {SENTENCE!r}, tokenizer=tokenizer, view='neuron', token=2, preload_qk_bytes=0)\nw"
)

# What the capture says for one query row, printed by the kernel as JSON.
CAPTURE_ROW = """\
import json, numpy as np
q, k = w.capture.query_key(w.layer)
scores = np.einsum("kd,d->k", k[w.head], q[w.head, w.token]) * w.capture.layer_scale(w.layer)
softmax = w.capture.layer_attention(w.layer)[w.head, w.token]
print(json.dumps({"softmax": softmax.tolist(), "scores": scores.tolist()}))"""


@pytest.fixture(scope="module")
def notebook(jupyter_server, browser):
    name = jupyter_server.write_notebook("neuron.ipynb", [LOAD_MINILM, SHOW_NEURON])
    with (
        browser_page(browser, "lab-neuron") as (page, errors),
        NotebookPage(page, errors, jupyter_server, name) as notebook,
    ):
        notebook.run_all()
        yield notebook


@pytest.fixture
def view(notebook):
    yield notebook.page.locator(".attnwidget .aw-neuronview")
    notebook.errors.assert_no_uncaught()


def rows(view):
    return view.locator(".aw-neuron-rows .aw-nrow")


def assert_view_matches_kernel(notebook, view) -> None:
    expected = json.loads(notebook.execute(CAPTURE_ROW))
    expect(rows(view)).to_have_count(len(expected["softmax"]))
    softmax = rows(view).evaluate_all("rows => rows.map(row => row.dataset.softmax)")
    scores = rows(view).evaluate_all("rows => rows.map(row => row.dataset.score)")
    assert_shown_equal(softmax, expected["softmax"], "softmax")
    assert_shown_equal(scores, expected["scores"], "q·k × scale")


def test_the_neuron_view_shows_the_captures_numbers_fetched_from_the_kernel(notebook, view):
    expect(view).to_be_visible()
    expect(view.locator(".aw-neuron-caption")).to_have_text("layer 0 · head 0")
    assert notebook.execute("print(w._qk)") == "{}", "the test means to exercise the on-demand path"
    assert_view_matches_kernel(notebook, view)

    notebook.execute("w.layer = 3")
    expect(view.locator(".aw-neuron-caption")).to_have_text("layer 3 · head 0")
    assert_view_matches_kernel(notebook, view)
    ARTIFACTS.mkdir(exist_ok=True)
    view.screenshot(path=ARTIFACTS / "minilm-neuron-view.png")


# Clicks every query token in turn and reads the rows each time: once the head is in the browser
# the view redraws synchronously, so one evaluate reads the whole head.
READ_EVERY_QUERY = """view => {
  const shown = {};
  for (const query of view.querySelectorAll('.aw-neuron-queries button')) {
    query.click();
    const rows = [...view.querySelectorAll('.aw-neuron-rows .aw-nrow')];
    shown[query.dataset.index] = rows.map(row => [row.dataset.softmax, row.dataset.score]);
  }
  return shown;
}"""

# The capture's attention, and Python's own scores and softmax in float64 from the capture's float32 q and k.
CAPTURE_LAYER = """import json, numpy as np
q, k = w.capture.query_key(w.layer)
scores = np.einsum("hqd,hkd->hqk", q.astype(np.float64), k.astype(np.float64)) * w.capture.layer_scale(w.layer)
weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
print(json.dumps({"softmax": w.capture.layer_attention(w.layer).tolist(), "scores": scores.tolist(),
                  "python_softmax": (weights / weights.sum(axis=-1, keepdims=True)).tolist()}))"""


def test_every_head_and_query_token_of_a_layer_shows_the_captures_numbers(notebook, view):
    notebook.execute("w.layer = 5")
    expect(view.locator(".aw-neuron-caption")).to_have_text(re.compile(r"^layer 5 · "))
    expect(rows(view).first).to_have_attribute("data-softmax", re.compile(r"\d"))
    expected = json.loads(notebook.execute(CAPTURE_LAYER))
    heads, n = len(expected["softmax"]), len(expected["softmax"][0])
    assert (heads, n) == (12, 6)

    for h in range(heads):
        # Each head's record is asked of the kernel as the chip is clicked.
        view.get_by_role("button", name=f"Head {h}", exact=True).click()
        expect(view.locator(".aw-neuron-caption")).to_have_text(re.compile(rf"· head {h}$"))
        expect(rows(view).first).to_have_attribute("data-softmax", re.compile(r"\d"))
        shown = view.evaluate(READ_EVERY_QUERY)
        for t in range(n):
            softmax, scores = zip(*shown[str(t)])
            # Python's numbers to every digit shown; the capture's attention to half a digit.
            assert list(scores) == [js_shown(value) for value in expected["scores"][h][t]], f"head {h}, query {t}"
            assert list(softmax) == [js_shown(value) for value in expected["python_softmax"][h][t]], f"head {h}, query {t}"
            assert_shown_equal(list(softmax), expected["softmax"][h][t], f"head {h}, query {t}: softmax")
            assert_shown_equal(list(scores), expected["scores"][h][t], f"head {h}, query {t}: q·k × scale")


CAPTURE_DIMENSIONS = """\
import json
q, k = w.capture.query_key(w.layer)
print(json.dumps({"q": q[w.head, w.token, :3].tolist(), "k": k[w.head, 1, :3].tolist()}))"""


def test_hovering_reads_the_exact_numbers(notebook, view):
    expected = json.loads(notebook.execute(CAPTURE_ROW))
    values = json.loads(notebook.execute(CAPTURE_DIMENSIONS))
    readout = view.locator(".aw-readout")

    rows(view).nth(1).locator(".aw-nnum").first.hover()
    text = readout.inner_text()
    match = re.search(r"q·k × scale = (\S+); softmax = (\S+)", text)
    assert match, text
    assert float(match[1]) == pytest.approx(expected["scores"][1], rel=1e-5)
    assert float(match[2]) == pytest.approx(expected["softmax"][1], rel=1e-5)

    # The key band starts where the query band does; each dimension is a few pixels wide.
    band = view.locator(".aw-neuron-qband").bounding_box()
    row = rows(view).nth(1).bounding_box()
    width = band["width"] / 32  # MiniLM: 32 dimensions per head
    for d in range(3):
        view.page.mouse.move(band["x"] + (d + 0.5) * width, row["y"] + row["height"] / 2)
        shown = re.search(rf"dimension {d}: k = (\S+), q = (\S+), q × k = (\S+)", readout.inner_text())
        assert shown, readout.inner_text()
        for text, value in zip(shown.groups()[:2], (values["k"][d], values["q"][d])):
            # The capture's float32, to the three digits shown.
            assert float(text) == pytest.approx(value, rel=5e-3, abs=1e-6)


def test_clicking_a_key_token_in_the_neuron_view_sets_token_in_the_kernel(notebook, view):
    tokens = json.loads(notebook.execute('import json; print(json.dumps(w.meta["sides"]["input"]["tokens"]))'))
    target = tokens.index("autumn")
    rows(view).nth(target).get_by_role("button").click()
    expect(view.locator(".aw-neuron-query")).to_have_text("autumn")
    assert notebook.execute("print(w.token)") == str(target)
    assert_view_matches_kernel(notebook, view)


def test_setting_head_in_the_kernel_updates_the_neuron_view(notebook, view):
    notebook.execute("w.head = 4")
    expect(view.locator(".aw-neuron-caption")).to_have_text(re.compile(r"· head 4$"))
    expect(view.get_by_role("button", name="Head 4", exact=True)).to_have_attribute("aria-pressed", "true")
    assert_view_matches_kernel(notebook, view)
