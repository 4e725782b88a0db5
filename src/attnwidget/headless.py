"""Pictures of a widget without a notebook: a headless Chromium draws the widget's exported page.

`AttentionWidget.save_image` needs a displayed view to draw; here the exported page (export.py)
is opened offline in Chromium through Playwright and its own "Save PNG/SVG" button makes the file.
"""

from __future__ import annotations

import os
import pathlib
import tempfile
import time
from typing import TYPE_CHECKING, Any

from . import files
from .image import checked_image, image_format

if TYPE_CHECKING:
    from .widget import AttentionWidget

CHROMIUM_ARGS = ("--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run")
"""A quiet headless Chromium: no GPU, no update or background traffic."""


def _chromium_args() -> list[str]:
    # Chromium refuses to run as root with its sandbox; only then is it turned off (the page is
    # our own export, its network cut off).
    as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    return [*CHROMIUM_ARGS, *(["--no-sandbox"] if as_root else [])]


_DRAW_WAIT_S = 10.0
"""How long the page may take to decode its data and draw before "nothing drawn" is final."""


def render_image(
    widget: AttentionWidget,
    path: str | os.PathLike[str],
    format: str | None = None,
    *,
    browser_path: str | os.PathLike[str] | None = None,
    browser: Any = None,
    timeout: float = 60.0,
) -> pathlib.Path:
    """Save the current view as PNG or SVG without a notebook: headless Chromium draws the widget's export.

    Needs the `playwright` package and a Chromium: `browser_path` (e.g. "/usr/bin/chromium"),
    else $ATTNWIDGET_CHROMIUM, else the browser `playwright install chromium` downloaded.
    The page is opened from a temporary file with every network request refused. To save many
    images, pass a Playwright `browser` you launched; it is used, not closed.
    """
    image_type = image_format(path, format)
    target = files.checked_target(path)
    if browser is not None:
        data = _draw_export(browser, widget, image_type, timeout)
        files.write_atomically(target, data)
        return target
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        raise ImportError(
            "render_image draws the widget in a headless browser and needs Playwright: pip install playwright, "
            "then pass browser_path= a Chromium (or run `playwright install chromium`). In a notebook, "
            "display the widget and use widget.save_image(path) instead."
        ) from error
    executable = browser_path or os.environ.get("ATTNWIDGET_CHROMIUM")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=os.fspath(executable) if executable else None, args=_chromium_args()
        )
        try:
            data = _draw_export(launched, widget, image_type, timeout)
        finally:
            launched.close()
    files.write_atomically(target, data)
    return target


def _draw_export(browser: Any, widget: AttentionWidget, image_type: str, timeout: float) -> bytes:
    with tempfile.TemporaryDirectory(prefix="attnwidget-image-") as folder:
        page_path = pathlib.Path(folder) / "widget.html"
        widget.to_html(page_path)
        data = _draw_page(browser, page_path, image_type, timeout)
    checked_image(image_type, data)  # an empty or broken picture is reported, not written
    return data


def _only_files(route: Any) -> None:
    if route.request.url.startswith("file:"):
        route.continue_()
    else:
        route.abort()


def _draw_page(browser: Any, page_path: pathlib.Path, image_type: str, timeout: float) -> bytes:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True, offline=True)
    try:
        # The page is ours and needs nothing from the network; refuse anything but its own file.
        context.route("**/*", _only_files)
        page = context.new_page()
        page.goto(page_path.as_uri())
        downloads: list[Any] = []
        page.on("download", lambda download: downloads.append(download))
        button = page.get_by_role("button", name=f"Save {image_type.upper()}", exact=True)
        status = page.locator(".attnwidget .aw-save-status")
        started = time.monotonic()
        # The view draws once its data is decoded; until then the button says it has nothing
        # drawn yet, so ask again for a while before taking that answer as final.
        while True:
            button.click(timeout=timeout * 1000)
            while not downloads and not status.inner_text():
                if time.monotonic() - started > timeout:
                    raise TimeoutError(f"the page did not produce the image within {timeout} s")
                page.wait_for_timeout(50)
            if downloads:
                break
            if time.monotonic() - started > min(timeout, _DRAW_WAIT_S):
                raise RuntimeError(f"the browser could not make the image: {status.inner_text()}")
            page.wait_for_timeout(200)
        return pathlib.Path(downloads[0].path()).read_bytes()
    finally:
        context.close()
