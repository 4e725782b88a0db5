"""BertViz's quick start as a notebook, executed by a real kernel (nbclient) on the real MiniLM.

With `from attnwidget.bertviz import ...` every view cell shows exactly one attnwidget. The same
notebook with BertViz's imports put back runs on BertViz itself, which proves it is BertViz's
quick start and that the imports are the only difference.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
import torch
from nbclient import NotebookClient

import attnwidget

NOTEBOOK = Path(__file__).parent / "notebooks" / "bertviz_quickstart.ipynb"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"

# Our import line -> BertViz's. Nothing else in the notebook names attnwidget.
BERTVIZ_IMPORTS = {
    "from attnwidget.bertviz import head_view, model_view": "from bertviz import head_view, model_view",
    "from attnwidget.bertviz.neuron_view import show": "from bertviz.neuron_view import show",
    "from transformers import BertModel, BertTokenizer": (
        "from bertviz.transformers_neuron_view import BertModel, BertTokenizer"
    ),
}
VIEW_CELLS = {"head-view": "head", "model-view": "model", "neuron-view": "neuron"}


def cell_tagged(notebook, tag: str):
    (cell,) = [cell for cell in notebook.cells if tag in cell.metadata.get("tags", [])]
    return cell


def execute(notebook, workdir: Path, monkeypatch) -> None:
    # Kernelspec "python3" starts this interpreter; it must find attnwidget where this test did
    # (installed, or src/ on PYTHONPATH), also from the kernel's own working folder.
    package_parent = str(Path(attnwidget.__file__).resolve().parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    )
    client.execute()  # raises CellExecutionError, with the traceback, on the first failing cell


def errors(notebook) -> list[str]:
    return [
        f"{output.get('ename')}: {output.get('evalue')}"
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    with pytest.MonkeyPatch.context() as monkeypatch:
        execute(notebook, tmp_path_factory.mktemp("ours"), monkeypatch)
    return notebook


def test_the_notebook_runs_without_errors(executed):
    assert errors(executed) == []


def our_widgets(notebook, tag: str) -> list[dict]:
    """Synced states of the attnwidgets a cell shows (transformers' tqdm bars are widgets too)."""
    states = notebook.metadata["widgets"][WIDGET_STATE]["state"]
    shown = [output["data"][WIDGET_VIEW]["model_id"] for output in cell_tagged(notebook, tag).outputs
             if WIDGET_VIEW in output.get("data", {})]  # fmt: skip
    return [states[model_id]["state"] for model_id in shown if states[model_id]["model_module"] == "anywidget"]


@pytest.mark.parametrize("tag, view", VIEW_CELLS.items())
def test_each_view_cell_shows_exactly_one_widget_in_its_view(executed, tag, view):
    widgets = our_widgets(executed, tag)
    assert [state["view"] for state in widgets] == [view]


def test_neuron_view_opens_on_the_requested_layer_and_head_of_the_pair(executed):
    (state,) = our_widgets(executed, "neuron-view")
    assert (state["layer"], state["head"]) == (2, 0)
    side = state["meta"]["sides"]["input"]
    assert side["tokens"][side["segment_b_start"] :] == ["the", "cat", "lay", "on", "the", "rug", "[SEP]"]


def bertviz_version_of(notebook):
    """The notebook with BertViz's imports put back; returns it and the lines that changed."""
    changed = []
    copy = nbformat.from_dict(notebook)
    for cell in copy.cells:
        if cell.cell_type != "code":
            continue
        lines = cell.source.split("\n")
        for index, line in enumerate(lines):
            if line in BERTVIZ_IMPORTS:
                lines[index] = BERTVIZ_IMPORTS[line]
                changed.append(line)
        cell.source = "\n".join(lines)
    return copy, changed


def test_only_import_lines_name_attnwidget():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    ported, changed = bertviz_version_of(notebook)
    assert sorted(changed) == sorted(BERTVIZ_IMPORTS)
    for cell in ported.cells:
        if cell.cell_type == "code":
            assert "attnwidget" not in cell.source
    sources = [cell.source for cell in ported.cells if cell.cell_type == "code"]
    assert any(re.search(r"^head_view\(attention, tokens, sentence_b_start\)$", s, re.M) for s in sources)
    assert any(re.search(r"^show\(model, model_type, tokenizer, sentence_a, sentence_b, layer=2, head=0\)$", s, re.M)
               for s in sources)  # fmt: skip


def bertviz_model_folder(minilm_path: str, folder: Path) -> Path:
    """MiniLM's files plus the pytorch_model.bin that BertViz's own BertModel loads (it cannot read safetensors)."""
    from safetensors.torch import load_file

    folder.mkdir()
    for name in os.listdir(minilm_path):
        source = Path(minilm_path) / name
        if source.is_file():
            (folder / name).symlink_to(source)
    torch.save(load_file(Path(minilm_path) / "model.safetensors"), folder / "pytorch_model.bin")
    return folder


def test_the_same_notebook_runs_on_bertviz(minilm_path, tmp_path, monkeypatch):
    ported, _ = bertviz_version_of(nbformat.read(NOTEBOOK, as_version=4))
    folder = bertviz_model_folder(minilm_path, tmp_path / "minilm")
    cell_tagged(ported, "model-version").source = f"model_version = {str(folder)!r}"

    execute(ported, tmp_path, monkeypatch)

    assert errors(ported) == []
    for tag in VIEW_CELLS:
        kinds = {kind for output in cell_tagged(ported, tag).outputs for kind in output.get("data", {})}
        assert "text/html" in kinds and WIDGET_VIEW not in kinds  # BertViz's own HTML and script
