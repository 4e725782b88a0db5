"""notebooks/quickstart.ipynb, as shipped, run top to bottom in Notebook 7: it renders and reacts to clicks."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from playwright.sync_api import expect

from lab import running_notebook

QUICKSTART = Path(__file__).parents[1] / "notebooks" / "quickstart.ipynb"


def test_quickstart_runs_and_reports_clicks(jupyter_server, browser):
    shutil.copy(QUICKSTART, jupyter_server.root / QUICKSTART.name)
    with running_notebook(browser, jupyter_server, QUICKSTART.name, app="notebook") as notebook:
        page = notebook.page
        widget = page.locator(".attnwidget")
        expect(widget).to_be_visible()
        expect(widget.get_by_role("button", name=re.compile(r"^Head \d+$"))).to_have_count(12)
        # The notebook sets w.layer = 3 from Python.
        expect(widget.get_by_label("Layer", exact=True)).to_have_value("3")

        # Its last cell prints every layer or head change made in the page.
        widget.get_by_role("button", name="Head 2", exact=True).click()
        expect(page.locator(".widget-output")).to_contain_text("head: 7 -> 2")
        notebook.errors.assert_no_uncaught()
