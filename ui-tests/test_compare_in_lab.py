"""A compared widget in a real JupyterLab: the real MiniLM against a copy whose layer 3 queries are flipped. The page
draws A − B, and `save_image` from the kernel writes a picture of it in diverging colours, captioned as a difference."""

from __future__ import annotations

import base64
import json
import time

from playwright.sync_api import expect

from lab import ARTIFACTS, LOAD_MINILM, NotebookPage, browser_page

COMPARE = """\
import copy, torch
tuned = copy.deepcopy(model)
with torch.no_grad():
    tuned.encoder.layer[3].attention.self.query.weight.mul_(-1)  # layer 3 attends differently; the rest is the same
text = 'leaves fall in autumn and the old trees stand bare'
c = AttentionWidget.compare(AttentionWidget(model, text, tokenizer=tokenizer),
                            AttentionWidget(tuned, text, tokenizer=tokenizer), layer=3)
c"""
# Pixels of an image clearly red (A attends more) and clearly blue (B does), read by the page's own canvas.
RED_AND_BLUE = """async source => {
  const image = new Image();
  image.src = source;
  await image.decode();
  const canvas = document.createElement('canvas');
  canvas.width = image.width;
  canvas.height = image.height;
  const context = canvas.getContext('2d');
  context.drawImage(image, 0, 0);
  const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
  let red = 0, blue = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i] - data[i + 2] > 40) red++;
    if (data[i + 2] - data[i] > 40) blue++;
  }
  return [red, blue];
}"""


def _saved(notebook: NotebookPage, call: str) -> None:
    """Run `call` (a save_image into `h`) and wait, as a user would, until the widget has answered."""
    notebook.execute(f"h = {call}")
    deadline = time.monotonic() + 60
    while notebook.execute("print(h.done())") != "True":
        assert time.monotonic() < deadline, "the widget never answered"


def test_save_image_of_a_compared_widget_in_jupyterlab_draws_a_minus_b(jupyter_server, browser):
    name = jupyter_server.write_notebook("compare.ipynb", [LOAD_MINILM, COMPARE])
    with (
        browser_page(browser, "lab-compare") as (page, errors),
        NotebookPage(page, errors, jupyter_server, name) as notebook,
    ):
        notebook.run_all()
        expect(page.locator(".attnwidget .aw-matrix")).to_be_visible()
        assert notebook.execute("print(c.stack, c.layer, c.view)") == "A-B:self 3 matrix"

        _saved(notebook, 'c.save_image("diff.png")')
        png = (jupyter_server.root / "diff.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        red, blue = page.evaluate(RED_AND_BLUE, "data:image/png;base64," + base64.b64encode(png).decode("ascii"))
        assert red > 200 and blue > 200, f"a difference of both signs shows red and blue: {red} red, {blue} blue"

        _saved(notebook, 'c.save_image("diff.svg")')
        caption = notebook.execute(
            "import json\nprint(json.dumps(open(h.result(), encoding='utf-8').read().split('<text')[1]))"
        )
        assert "A:self minus B:self" in json.loads(caption) and "layer 3" in json.loads(caption)
        errors.assert_no_uncaught()
        (jupyter_server.root / "diff.png").replace(ARTIFACTS / "lab-compare.png")
