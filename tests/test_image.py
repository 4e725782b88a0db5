"""`AttentionWidget.save_image`: the request Python sends, and the file it writes when a view answers.

The browser's side (drawing the picture) is tested in js/image/image.test.ts and, on the real
MiniLM in Chromium and JupyterLab, in ui-tests/test_image_in_browser.py. Here a test plays the browser.
"""

from __future__ import annotations

import struct
import warnings
import zlib

import pytest
from conftest import make_capture

from attnwidget import AttentionWidget
from attnwidget import image as image_module

SVG = b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="300" height="200"/>\n'


def png(width: int, height: int) -> bytes:
    """A real PNG of one grey colour, as a browser's canvas.toBlob would give."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


pytestmark = pytest.mark.usefixtures("recording_comm")


@pytest.fixture
def widget():
    made = AttentionWidget.from_capture(make_capture(), layer=1, head=2)
    made._repr_mimebundle_()  # displayed, as the last line of a notebook cell does
    yield made
    made.close()


def requests(widget) -> list[dict]:
    return [content for content, _ in widget.comm.custom() if content.get("kind") == "image_request"]


def answer(widget, content: dict, data: bytes | None = None) -> None:
    """The browser's answer, delivered as the comm delivers custom messages."""
    buffers = [memoryview(data)] if data else []
    message = {"content": {"data": {"method": "custom", "content": content}}, "buffers": buffers}
    widget._handle_msg(message)


def test_save_image_asks_the_browser_and_writes_the_png_when_it_answers(widget, tmp_path):
    target = tmp_path / "figure.png"
    pending = widget.save_image(target)
    [request] = requests(widget)
    assert request == {"kind": "image_request", "id": pending.request_id, "format": "png", "scale": 2}
    assert not pending.done() and not target.exists()
    assert "will be written when the widget answers; the cell must finish first" in repr(pending)

    reply = {"kind": "image", "id": request["id"], "format": "png", "width": 310, "height": 240, "file_name": "x.png"}
    answer(widget, reply, png(620, 480))
    assert pending.done()
    assert pending.result(timeout=0) == target
    assert target.read_bytes() == png(620, 480)
    assert pending.size == (620, 480)
    assert "written, 620×480 px" in repr(pending)
    assert [p.name for p in tmp_path.iterdir()] == ["figure.png"]  # no temporary file left behind


def test_the_format_comes_from_the_extension_or_the_argument(widget, tmp_path):
    assert widget.save_image(tmp_path / "a.SVG").format == "svg"
    assert widget.save_image(tmp_path / "b.img", format="png").format == "png"
    assert [r["format"] for r in requests(widget)] == ["svg", "png"]
    with pytest.raises(ValueError, match=r"name it \.png or \.svg"):
        widget.save_image(tmp_path / "c.jpg")
    with pytest.raises(ValueError, match="'png' or 'svg'"):
        widget.save_image(tmp_path / "c.png", format="jpeg")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        widget.save_image(tmp_path / "missing" / "c.png")
    with pytest.raises(ValueError, match="scale"):
        widget.save_image(tmp_path / "c.png", scale=0)
    assert len(requests(widget)) == 2  # nothing was asked for a refused call


def test_an_svg_answer_is_written_as_sent(widget, tmp_path):
    pending = widget.save_image(tmp_path / "figure.svg")
    reply = {"kind": "image", "id": pending.request_id, "format": "svg", "width": 300, "height": 200}
    answer(widget, reply, SVG)
    assert pending.result(timeout=0).read_bytes() == SVG
    assert pending.size == (300, 200)


def test_the_first_view_to_answer_wins(widget, tmp_path):
    pending = widget.save_image(tmp_path / "figure.png")
    reply = {"kind": "image", "id": pending.request_id, "format": "png", "width": 1, "height": 1, "file_name": "x.png"}
    answer(widget, reply, png(4, 3))
    answer(widget, reply, png(8, 8))  # a second display of the same widget
    assert pending.size == (4, 3)
    assert (tmp_path / "figure.png").read_bytes() == png(4, 3)


def test_a_browser_error_is_raised_by_result_and_writes_nothing(widget, tmp_path):
    pending = widget.save_image(tmp_path / "figure.png")
    error = "the neuron view has nothing drawn yet"
    answer(widget, {"kind": "image", "id": pending.request_id, "format": "png", "error": error})
    assert pending.done()
    with pytest.raises(RuntimeError, match="nothing drawn yet"):
        pending.result()
    assert "failed: the neuron view has nothing drawn yet" in repr(pending)
    assert list(tmp_path.iterdir()) == []


def test_an_answer_that_is_not_the_format_asked_for_writes_nothing(widget, tmp_path):
    pending = widget.save_image(tmp_path / "figure.png")
    answer(widget, {"kind": "image", "id": pending.request_id, "format": "png", "width": 1, "height": 1}, SVG)
    with pytest.raises(RuntimeError, match="not a PNG"):
        pending.result()
    assert list(tmp_path.iterdir()) == []


def test_an_existing_file_is_replaced_only_when_the_answer_arrives(widget, tmp_path):
    target = tmp_path / "figure.png"
    target.write_bytes(b"old")
    pending = widget.save_image(target)
    assert target.read_bytes() == b"old"
    answer(widget, {"kind": "image", "id": pending.request_id, "format": "png", "width": 1, "height": 1}, png(2, 2))
    assert target.read_bytes() == png(2, 2)


def test_a_widget_never_displayed_warns_and_times_out_with_what_to_do(tmp_path):
    hidden = AttentionWidget.from_capture(make_capture())
    try:
        with pytest.warns(UserWarning, match="has not been displayed"):
            pending = hidden.save_image(tmp_path / "figure.png")
        with pytest.raises(TimeoutError, match="Is the widget displayed"):
            pending.result(timeout=0.05)
    finally:
        hidden.close()


def test_result_in_the_asking_cell_explains_the_answer_comes_after_the_cell(widget, tmp_path, monkeypatch):
    monkeypatch.setattr(image_module, "_current_cell", lambda: 7)
    pending = widget.save_image(tmp_path / "figure.png")
    with pytest.raises(RuntimeError, match="after this cell has finished"):
        pending.result(timeout=5)  # raises at once: waiting could never succeed
    monkeypatch.setattr(image_module, "_current_cell", lambda: 8)  # the next cell, run before the answer came
    with pytest.raises(TimeoutError, match="run this again in a moment"):
        pending.result(timeout=5)  # at once, too: the kernel cannot read the answer while this cell runs
    answer(widget, {"kind": "image", "id": pending.request_id, "format": "png", "width": 1, "height": 1}, png(2, 2))
    assert pending.result().exists()


def test_a_closed_widget_refuses_at_once(tmp_path):
    closed = AttentionWidget.from_capture(make_capture())
    closed.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeError, match="has been closed"):
            closed.save_image(tmp_path / "figure.png")


def test_other_custom_messages_are_left_alone(widget, tmp_path):
    pending = widget.save_image(tmp_path / "figure.png")
    answer(widget, {"kind": "response", "id": pending.request_id, "error": "not ours"})
    answer(widget, {"kind": "image", "id": pending.request_id + 100, "format": "png", "error": "unknown id"})
    assert not pending.done()


def test_cli_refuses_an_image_name_that_is_neither_png_nor_svg_before_loading_a_model(tmp_path, capsys):
    from attnwidget import cli

    code = cli.main(["export", "--text", "hi", "-o", str(tmp_path / "p.html"), "--image", str(tmp_path / "p.gif")])
    assert code == cli.EXIT_BAD_INPUT
    error = capsys.readouterr().err
    assert "--image" in error and "name the picture .png or .svg" in error
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("figure.png", png(0, 0), r"empty \(0×0 px\)"),
        ("figure.svg", SVG.replace(b'width="300" height="200"', b'width="0" height="0"'), r"empty \(0×0 px\)"),
        ("figure.svg", b'<?xml version="1.0"?>\n<html>error</html>', "not an SVG"),
    ],
)
def test_an_empty_or_broken_picture_writes_nothing_and_says_why(widget, tmp_path, name, data, message):
    pending = widget.save_image(tmp_path / name)
    answer(widget, {"kind": "image", "id": pending.request_id, "format": pending.format, "width": 0, "height": 0}, data)
    with pytest.raises(RuntimeError, match=message):
        pending.result()
    assert list(tmp_path.iterdir()) == []


def test_an_error_answer_that_also_carries_a_file_writes_nothing(widget, tmp_path):
    pending = widget.save_image(tmp_path / "figure.svg")
    answer(widget, {"kind": "image", "id": pending.request_id, "format": "svg", "error": "paint failed"}, SVG)
    with pytest.raises(RuntimeError, match="paint failed"):
        pending.result()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad_id", [[1], {"id": 1}, True, None, "1"])
def test_an_answer_with_an_id_no_request_can_have_is_ignored_without_raising(widget, tmp_path, bad_id, caplog):
    pending = widget.save_image(tmp_path / "figure.png")
    answer(widget, {"kind": "image", "id": bad_id, "format": "png", "width": 1, "height": 1}, png(2, 2))
    assert not pending.done() and "ignored an image answer" in caplog.text
    answer(widget, {"kind": "image", "id": pending.request_id, "format": "png", "width": 1, "height": 1}, png(2, 2))
    assert pending.result(timeout=0).read_bytes() == png(2, 2)


def test_render_image_writes_nothing_when_the_browser_drew_an_empty_picture(widget, tmp_path, monkeypatch):
    from attnwidget import headless

    monkeypatch.setattr(headless, "_draw_page", lambda *_args: png(0, 0))  # what Chromium handed over
    target = tmp_path / "figure.png"
    with pytest.raises(ValueError, match=r"empty \(0×0 px\)"):
        headless.render_image(widget, target, browser=object())
    assert not target.exists()
