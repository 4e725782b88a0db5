"""Two runs over different tokens side by side, their selection linked (`AttentionWidget.compare`).

Runs over the same tokens are subtracted into one widget instead (`capturing/comparing.py`). Here each run keeps its
own widget; what is selected in one moves the other wherever the other has it (docs/analysis.md, "Comparing two
runs"): layer, head, view, score and stack always, when valid there; the token only when both widgets have the same
number of tokens on every side, since an index into different tokens names a different word.
`widget.py` imports this module (in `AttentionWidget.compare`), so it takes the widgets as they come and never imports
`widget.py` back.
"""

from __future__ import annotations

import html
import os
from typing import Any

import ipywidgets
import traitlets

from .capturing.comparing import DEFAULT_NAMES
from .export import DEFAULT_SIZE_BUDGET, side_by_side_page

LINKED_TRAITS = ("stack", "layer", "head", "view", "score", "theme")
"""Followed from one widget to the other wherever the other accepts the value; the stack first, which fits the
rest of the selection to itself."""


class Comparison(ipywidgets.HBox):
    """Two AttentionWidgets side by side, with linked selection. `left` and `right` are the widgets; `names` the runs'."""

    def __init__(self, left: Any, right: Any, names: tuple[str, str] = DEFAULT_NAMES):
        names = tuple(str(name) for name in names)
        if len(names) != 2:
            raise ValueError(f"names must be two names, one per run; got {names!r}")
        self.left, self.right, self.names = left, right, names
        self.links_token = _token_counts(left) == _token_counts(right)
        labelled = [ipywidgets.VBox([ipywidgets.HTML(f"<b>{_escaped(name)}</b>"), widget]) for name, widget in
                    zip(names, (left, right))]  # fmt: skip
        super().__init__(labelled, layout=ipywidgets.Layout(width="100%"))
        self.linked = LINKED_TRAITS + (("token",) if self.links_token else ())
        """The traits one widget's change moves in the other."""
        for source, target in ((left, right), (right, left)):
            source.observe(lambda change, target=target: _follow(target, change.name, change.new), names=self.linked)

    def to_html(
        self, path: str | os.PathLike[str] | None = None, *, size_budget: int | None = DEFAULT_SIZE_BUDGET,
        title: str | None = None,
    ) -> str | None:
        """One self-contained HTML file with both widgets side by side, linked in the page as here; each takes half of
        `size_budget`. Writes `path` and returns None, or returns the HTML when `path` is None."""
        half = None if size_budget is None else size_budget // 2
        pages = [widget.exported_page(size_budget=half) for widget in (self.left, self.right)]
        title = f"attnwidget — {self.names[0]} and {self.names[1]}" if title is None else str(title)
        page = side_by_side_page(pages, list(self.names), title, path)
        return page if path is None else None


def _follow(target: Any, name: str, value: Any) -> None:
    """Move `target` to the value the other widget took, unless it has it already or cannot take it."""
    if getattr(target, name) == value:
        return
    try:
        setattr(target, name, value)
    except traitlets.TraitError:
        pass  # the other run has no such stack, layer or head: it stays where it is


def _token_counts(widget: Any) -> dict[str, int]:
    return {name: len(side) for name, side in widget.capture.sides.items()}


def _escaped(text: str) -> str:
    return html.escape(text, quote=True)
