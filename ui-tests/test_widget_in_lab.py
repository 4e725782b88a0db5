"""The widget in a real JupyterLab on the real MiniLM: it renders, and clicks and kernel writes reach the other side."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from lab import ARTIFACTS, LOAD_MINILM, running_notebook

SENTENCE = "leaves fall in autumn"
PAIR = "autumn is marked by colorful foliage"
LAYERS, HEADS = 6, 12  # all-MiniLM-L6-v2

SHOW_WIDGET = f"w = AttentionWidget(model, {SENTENCE!r}, tokenizer=tokenizer, text_pair={PAIR!r})\nw"


@pytest.fixture(scope="module")
def notebook(jupyter_server, browser):
    """One MiniLM notebook, run once in JupyterLab and shared by the tests of this module."""
    with running_notebook(browser, jupyter_server, "minilm.ipynb", [LOAD_MINILM, SHOW_WIDGET]) as notebook:
        yield notebook


@pytest.fixture
def widget(notebook):
    """The widget's root element; the test fails if the page threw an uncaught error meanwhile."""
    yield notebook.page.locator(".attnwidget")
    notebook.errors.assert_no_uncaught()


def query_tokens(widget):
    return widget.get_by_role("group", name="Query tokens").get_by_role("button")


def test_renders_heads_and_tokens_of_minilm(notebook, widget):
    expect(widget).to_be_visible()
    chips = widget.get_by_role("button", name=re.compile(r"^Head \d+$"))
    expect(chips).to_have_count(HEADS)
    expect(chips).to_have_text([str(head) for head in range(HEADS)])

    shown = query_tokens(widget).all_inner_texts()
    sent = notebook.execute('print(*w.meta["sides"]["input"]["tokens"], sep="\\n")').splitlines()
    assert shown == sent, "the page shows other tokens than Python sent"
    words = [token for token in shown if re.fullmatch(r"[a-z]+", token)]
    assert " ".join(words) == f"{SENTENCE} {PAIR}", f"the words of both sentences, in order, among {shown}"

    ARTIFACTS.mkdir(exist_ok=True)
    widget.screenshot(path=ARTIFACTS / "minilm-head-view.png")


def test_clicking_a_head_chip_sets_head_in_the_kernel(notebook, widget):
    assert notebook.execute("print(w.head, 5 in w.heads)") == "0 True"
    chip = widget.get_by_role("button", name="Head 5", exact=True)
    chip.click()
    # In the head view a click focuses that head and shows it alone.
    expect(widget.get_by_role("button", name="Head 0", exact=True)).to_have_attribute("aria-pressed", "false")
    assert notebook.execute("print(w.head, w.heads)") == "5 [5]"
    # Shift-click (BertViz's click) hides or shows a head; All shows every head again.
    chip.click(modifiers=["Shift"])
    expect(chip).to_have_attribute("aria-pressed", "false")
    assert notebook.execute("print(w.head, w.heads)") == "5 []"
    widget.get_by_role("button", name="All", exact=True).click()
    assert notebook.execute("print(w.head, len(w.heads))") == "5 12"


def test_setting_layer_in_the_kernel_changes_the_view(notebook, widget):
    layer = widget.get_by_label("Layer", exact=True)
    expect(layer).to_have_value("0")
    notebook.execute("w.layer = 3")
    expect(layer).to_have_value("3")


def test_clicking_a_token_pins_it_in_the_kernel(notebook, widget):
    autumn = query_tokens(widget).filter(has_text=re.compile(r"^autumn$")).first
    autumn.click()
    # "autumn" first appears at position 4: [CLS] leaves fall in autumn.
    assert notebook.execute("print(w.token, w.meta['sides']['input']['tokens'][w.token])") == "4 autumn"
    autumn.click()  # a second click unpins
    assert notebook.execute("print(w.token)") == "None"


def test_model_view_cell_opens_that_layer_and_head(notebook, widget):
    widget.get_by_role("button", name="Model", exact=True).click()
    cell = widget.get_by_role("button", name="Layer 4 Head 2", exact=True)
    expect(widget.get_by_role("button", name=re.compile(r"^Layer \d+ Head \d+$"))).to_have_count(LAYERS * HEADS)
    assert notebook.execute("print(w.view)") == "model"
    cell.click()
    expect(widget.get_by_label("Layer", exact=True)).to_have_value("4")
    assert notebook.execute("print(w.view, w.layer, w.head, 2 in w.heads)") == "head 4 2 True"


def test_choosing_a_score_and_its_top_head_reach_the_kernel(notebook, widget):
    widget.get_by_role("button", name="Model", exact=True).click()
    widget.get_by_label("Score", exact=True).select_option("previous_token")
    assert notebook.execute("print(w.score)") == "previous_token"
    expected = notebook.execute(
        "top = w.head_scores(progress=False).sort_values(['previous_token', 'layer'], ascending=[False, True]).iloc[0]\n"
        "print(int(top['layer']), int(top['head']), round(float(top['previous_token']), 3))"
    )
    layer, head, _value = expected.split()
    first = widget.get_by_role("list", name="Top heads").get_by_role("button").first
    expect(first).to_have_text(re.compile(rf"^L{layer} H{head} "))
    first.click()
    expect(widget.get_by_role("region", name="Head view")).to_be_visible()
    assert notebook.execute("print(w.view, w.layer, w.head)") == f"head {layer} {head}"


def test_words_and_weights_in_the_page_set_w_stack_and_follow_it(notebook, widget):
    widget.get_by_role("button", name="Head", exact=True).click()
    widget.get_by_label("Words", exact=True).check()
    assert notebook.execute("print(w.stack)") == "self·words"
    words = notebook.execute('print(*w.meta["sides"]["input·words"]["tokens"], sep="\\n")').splitlines()
    expect(query_tokens(widget)).to_have_text(words)
    widget.get_by_label("Weights", exact=True).select_option("rollout")
    assert notebook.execute("print(w.stack, w.heads)") == "self·rollout·words [0]"
    notebook.execute('w.stack = "self·rollout"')  # from Python: the controls follow
    expect(widget.get_by_label("Words", exact=True)).not_to_be_checked()
    expect(widget.get_by_label("Weights", exact=True)).to_have_value("rollout")
    expect(widget.get_by_role("button", name=re.compile(r"^Head \d+$"))).to_have_count(1)
    notebook.execute('w.stack = "self"')
    expect(widget.get_by_label("Weights", exact=True)).to_have_value("attention")


# Last in the module: it shows a second widget in the notebook, which the `widget` fixture would then also match.
def test_heads_not_sent_up_front_arrive_one_per_request_from_the_kernel(notebook):
    from conftest import INKED_PIXELS

    code = (
        "from IPython.display import display\n"
        "w2 = AttentionWidget.from_capture(w.capture, preload_bytes=0, layer=2, head=7, derived=False)\n"
        "display(w2)\n"
        "print(len(w2._chunks), len(w2._thumbs))"
    )
    assert notebook.execute(code).splitlines()[-1] == "0 6", "nothing but thumbnails up front"
    page = notebook.page
    second = page.locator(".jp-CodeCell", has=page.locator(".jp-InputArea", has_text="w2 = ")).locator(".attnwidget")
    head_view = second.get_by_role("region", name="Head view")
    # Every visible head of layer 2 is asked for and drawn; the status clears once all have arrived.
    expect(second.locator(".aw-status")).to_have_text("", timeout=30_000)
    assert head_view.evaluate(INKED_PIXELS) > 0
    # Another layer from the page, by the label: the second widget's "Layer" names its own select, not the first's.
    second.get_by_label("Layer", exact=True).select_option("4")
    expect(second.locator(".aw-status")).to_have_text("", timeout=30_000)
    assert head_view.evaluate(INKED_PIXELS) > 0
    # The model view draws every head from the thumbnails alone.
    second.get_by_role("button", name="Model", exact=True).click()
    expect(second.get_by_role("button", name=re.compile(r"^Layer \d+ Head \d+$"))).to_have_count(LAYERS * HEADS)
    notebook.errors.assert_no_uncaught()
    assert notebook.execute("print(w2.layer, len(w2._chunks))").splitlines()[-1] == "4 0", "heads came as answers"
