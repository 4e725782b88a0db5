"""A compared widget in a real JupyterLab: the real MiniLM against a copy whose layer 3 queries are flipped. The page
draws A − B, and `save_image` from the kernel writes a picture of it in diverging colours, captioned as a difference."""

from __future__ import annotations

import base64
import json

from playwright.sync_api import expect

from lab import ARTIFACTS, LOAD_MINILM, running_notebook
from widget_checks import RED_AND_BLUE

COMPARE = """\
import copy, torch
tuned = copy.deepcopy(model)
with torch.no_grad():
    tuned.encoder.layer[3].attention.self.query.weight.mul_(-1)  # layer 3 attends differently; the rest is the same
text = 'leaves fall in autumn and the old trees stand bare'
c = AttentionWidget.compare(AttentionWidget(model, text, tokenizer=tokenizer),
                            AttentionWidget(tuned, text, tokenizer=tokenizer), layer=3)
c"""
# The picture drawn on a canvas of the page, its pixels counted as on screen.
RED_AND_BLUE_OF_PICTURE = f"""async source => {{
  const image = new Image();
  image.src = source;
  await image.decode();
  const canvas = document.createElement('canvas');
  canvas.width = image.width;
  canvas.height = image.height;
  canvas.getContext('2d').drawImage(image, 0, 0);
  return ({RED_AND_BLUE})(canvas);
}}"""


def test_save_image_of_a_compared_widget_in_jupyterlab_draws_a_minus_b(jupyter_server, browser):
    with running_notebook(browser, jupyter_server, "compare.ipynb", [LOAD_MINILM, COMPARE]) as notebook:
        page = notebook.page
        expect(page.locator(".attnwidget .aw-matrix")).to_be_visible()
        assert notebook.execute("print(c.stack, c.layer, c.view)") == "A-B:self 3 matrix"

        notebook.execute('h = c.save_image("diff.png")')
        notebook.wait_until_done("h")
        png = (jupyter_server.root / "diff.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        red, blue = page.evaluate(RED_AND_BLUE_OF_PICTURE, "data:image/png;base64," + base64.b64encode(png).decode("ascii"))
        assert red > 200 and blue > 200, f"a difference of both signs shows red and blue: {red} red, {blue} blue"

        notebook.execute('h = c.save_image("diff.svg")')
        notebook.wait_until_done("h")
        caption = notebook.execute(
            "import json\nprint(json.dumps(open(h.result(), encoding='utf-8').read().split('<text')[1]))"
        )
        assert "A:self minus B:self" in json.loads(caption) and "layer 3" in json.loads(caption)
        notebook.errors.assert_no_uncaught()
        (jupyter_server.root / "diff.png").replace(ARTIFACTS / "lab-compare.png")
