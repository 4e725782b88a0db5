"""PNG and SVG pictures of a widget's current view, asked of the browser: `AttentionWidget.save_image`.

Only the browser can draw the view, so Python sends `{"kind": "image_request", ...}` and every
displayed view answers with the picture (docs/data-contract.md, "Images"). A notebook kernel
reads that answer only once the running cell has finished, so `save_image` cannot wait for it:
it returns a `PendingImage`, which writes the file when the answer arrives.
Without a notebook, `headless.render_image` has a headless Chromium draw the exported page.
"""

from __future__ import annotations

import itertools
import logging
import os
import pathlib
import re
import threading
import warnings
from typing import TYPE_CHECKING, Any

from . import files, wire

if TYPE_CHECKING:
    from ipywidgets import Widget

DEFAULT_SCALE = 2
"""PNG pixels per CSS pixel: twice the screen's resolution, sharp in a paper."""
DEFAULT_TIMEOUT_S = 10.0

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

log = logging.getLogger(__name__)


def image_format(path: str | os.PathLike[str], format: str | None) -> str:
    """The format named by `format`, or by the file's extension; a clear error when neither says png or svg."""
    suffix = pathlib.Path(os.fspath(path)).suffix.lower().lstrip(".")
    if format is None:
        if suffix not in wire.IMAGE_FORMATS:
            raise ValueError(
                f"cannot tell the image format from {os.fspath(path)!r}; name it .png or .svg, or pass format='png'"
            )
        return suffix
    if format not in wire.IMAGE_FORMATS:
        raise ValueError(f"format must be 'png' or 'svg'; got {format!r}")
    return format


class PendingImage:
    """An image the browser has been asked for; the file is written when a displayed view answers.

    In a notebook the answer arrives after the cell that asked has finished: check `done()` or
    call `result()` in a later cell.
    """

    def __init__(self, path: pathlib.Path, format: str, request_id: int, asked_in_cell: int | None):
        self.path = path
        self.format = format
        self.request_id = request_id
        self._asked_in_cell = asked_in_cell
        self._answered = threading.Event()
        self._error: str | None = None
        self.size: tuple[int, int] | None = None
        """(width, height) in pixels of the written image (CSS pixels for SVG)."""

    def done(self) -> bool:
        """True once the file is written or the browser reported an error."""
        return self._answered.is_set()

    def result(self, timeout: float | None = DEFAULT_TIMEOUT_S) -> pathlib.Path:
        """The written file's path; raises TimeoutError if no view has answered.

        A notebook kernel reads the browser's answer only between cells, so waiting inside a cell
        could never see it: there this raises at once. Elsewhere it waits up to `timeout` seconds.
        """
        cell = None if self.done() else _current_cell()
        if cell is not None and cell == self._asked_in_cell:
            raise RuntimeError(
                f"{self.path.name} is written when the browser answers, which it can only do after this cell "
                "has finished; call .result() (or check .done()) in a later cell"
            )
        if cell is not None:
            raise TimeoutError(
                f"no view of the widget has answered yet, so {self.path} is not written. The notebook reads the "
                "answer between cells: if the widget is displayed, run this again in a moment; if it is not, "
                "display it and call save_image again."
            )
        if not self._answered.wait(timeout):
            raise TimeoutError(
                f"no view of the widget answered within {timeout} s, so {self.path} was not written. "
                "Is the widget displayed in this notebook (its output visible, the page open)? "
                "Display it, then call save_image again."
            )
        if self._error is not None:
            raise RuntimeError(f"the browser could not make {self.path.name}: {self._error}")
        return self.path

    def __repr__(self) -> str:
        if not self.done():
            state = "will be written when the widget answers; the cell must finish first"
        elif self._error is not None:
            state = f"failed: {self._error}"
        else:
            width, height = self.size or (0, 0)
            state = f"written, {width}×{height} px, {self.path.stat().st_size / 1000:.1f} kB"
        return f"<attnwidget {self.format.upper()} image {str(self.path)!r}: {state}>"

    def _settle(self, content: dict[str, Any], buffers: list[Any]) -> None:
        try:
            if "error" in content:  # an error answer writes nothing, whatever else it carries
                raise ValueError(wire.clipped(str(content["error"])))
            if content.get("format") != self.format or not buffers:
                raise ValueError(f"the browser answered with no {self.format} image (format {content.get('format')!r})")
            data = bytes(buffers[0])
            self.size = checked_image(self.format, data)
            files.write_atomically(self.path, data)
        except Exception as error:  # reported by result() and the repr; the comm handler must not raise
            log.warning("could not save %s: %s", self.path, error)
            self._error = str(error)
        self._answered.set()


class ImageRequests:
    """The image requests of one widget that await an answer, keyed by request id."""

    def __init__(self) -> None:
        self._pending: dict[int, PendingImage] = {}
        self._ids = itertools.count(1)

    def ask(self, widget: Widget, path: str | os.PathLike[str], format: str | None, scale: float) -> PendingImage:
        """Send `widget`'s views the request for a picture; the returned `PendingImage` writes it to `path`."""
        image_type = image_format(path, format)
        target = files.checked_target(path)
        if not (isinstance(scale, (int, float)) and 0 < scale <= 8):
            raise ValueError(f"scale is PNG pixels per screen pixel, above 0 and at most 8; got {scale!r}")
        if widget.comm is None:
            raise RuntimeError("this widget has been closed; create and display a new one to save an image")
        if not getattr(widget, "_displayed", False):
            warnings.warn(
                "this widget has not been displayed, so no view can draw the image; display it "
                "(end a cell with the widget) and call save_image again",
                stacklevel=3,
            )
        pending = PendingImage(target, image_type, next(self._ids), _current_cell())
        self._pending[pending.request_id] = pending
        widget.send({"kind": wire.IMAGE_REQUEST_KIND, "id": pending.request_id, "format": image_type, "scale": scale})
        return pending

    def receive(self, _widget: Widget, content: Any, buffers: list[Any]) -> None:
        """Custom-message handler: settle the request an `{"kind": "image"}` answer names."""
        if not isinstance(content, dict) or content.get("kind") != wire.IMAGE_KIND:
            return
        request_id = content.get("id")
        if isinstance(request_id, bool) or not isinstance(request_id, int):  # ids are ours, and ints
            log.warning("ignored an image answer with the id %s, which no request has", wire.quoted(request_id))
            return
        # Several views of one widget each answer; the first settles the request.
        pending = self._pending.pop(request_id, None)
        if pending is not None:
            pending._settle(content, buffers)


def checked_image(format: str, data: bytes) -> tuple[int, int]:
    """The (width, height) of a PNG or SVG file the browser made; ValueError for anything not worth writing.

    A view with nothing to show can still produce a well-formed file of 0 × 0 pixels: refused too.
    """
    if format == "png":
        if not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
            raise ValueError("the browser's answer is not a PNG file")
        # The IHDR chunk, right after the signature, starts with width and height.
        size = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    else:
        root = _SVG_ROOT.search(data[:4096]) if data.lstrip().startswith(b"<?xml") else None
        if root is None:
            raise ValueError("the browser's answer is not an SVG file")
        size = tuple(round(float(_svg_length(root.group(0), name))) for name in ("width", "height"))
    if min(size) <= 0:
        raise ValueError(f"the browser's {format.upper()} is empty ({size[0]}×{size[1]} px); nothing was drawn")
    return size  # type: ignore[return-value]


_SVG_ROOT = re.compile(rb"<svg\b[^>]*>")


def _svg_length(root: bytes, name: str) -> float:
    match = re.search(rb"\s" + name.encode() + rb'="([0-9.]+)', root)
    return float(match.group(1)) if match else 0.0


def _current_cell() -> int | None:
    """The running cell's execution count in IPython, else None."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return getattr(shell, "execution_count", None) if shell is not None else None
