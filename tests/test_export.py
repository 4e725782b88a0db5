"""The self-contained HTML export: string and file API, atomic write, escaping, size budget, selection.

What the page does in a browser is tested in ui-tests/test_export_offline.py and test_injection.py;
these tests read the document as a parser would.
"""

from __future__ import annotations

import base64
import hashlib
import html.parser
import json
import os
import re
import zlib

import numpy as np
import pytest

from attnwidget import AttentionWidget, export, files, wire
from conftest import make_capture

INJECTION_TOKENS = [
    "[CLS]",
    "<script>window.__pwned=1</script>",
    "</script><script>window.__pwned=2</script>",
    '<img src=x onerror="window.__pwned=3">',
    "javascript:window.__pwned=4",
    "\u202eevil\u202c",
    "nul\x00byte",
    '"><svg onload="window.__pwned=5">',
    "<!--",
    "a\u2028b\u2029c",
    "&amp;&lt;",
    "[SEP]",
]


def random_attention(layers: int, heads: int, n: int, seed: int = 0) -> np.ndarray:
    """[layers, heads, n, n] rows that sum to one and are far from uniform, like real attention."""
    logits = np.random.default_rng(seed).normal(scale=4.0, size=(layers, heads, n, n))
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    return (weights / weights.sum(-1, keepdims=True)).astype(np.float32)


def make_widget(tokens: list[str], layers: int = 3, heads: int = 4, **options) -> AttentionWidget:
    return AttentionWidget.from_attention(random_attention(layers, heads, len(tokens)), tokens, **options)


@pytest.fixture
def widget() -> AttentionWidget:
    return make_widget(["[CLS]", "leaves", "fall", "in", "autumn", "[SEP]"], sentence_b_start=3)


class Document(html.parser.HTMLParser):
    """The elements, text and embedded state of an exported page, as a browser's parser sees them."""

    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: dict[str, str] = {}
        self._open: str | None = None
        self.feed(page)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._open = tag

    def handle_data(self, data):
        if self._open:
            self.text[self._open] = self.text.get(self._open, "") + data

    def handle_endtag(self, tag):
        self._open = None

    def scripts(self) -> list[dict[str, str | None]]:
        return [attrs for tag, attrs in self.tags if tag == "script"]


def embedded_state(page: str) -> dict:
    """The JSON in the page's state element, read the way the HTML parser delimits it."""
    match = re.search(r'<script type="application/json" data-attnwidget-export>(.*?)</script>', page, re.S)
    assert match, "the page has no state element"
    return json.loads(match.group(1))


def decoded(state: dict, trait: str = "_chunks") -> dict[str, bytes]:
    """The values of one binary trait of the page, as the browser inflates them."""
    assert state["compression"] == "deflate"
    return {key: zlib.decompress(base64.b64decode(text)) for key, text in state["binary"][trait].items()}


# -- the API --------------------------------------------------------------------------------------
def test_without_a_path_returns_one_document_that_loads_nothing(widget):
    page = widget.to_html()
    assert page.startswith("<!DOCTYPE html>")
    doc = Document(page)
    policy = next(attrs["content"] for tag, attrs in doc.tags if attrs.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in policy and "img-src data: blob:" in policy
    # Nothing refers to another file or a server: no src, href or stylesheet link anywhere.
    assert not [attrs for _tag, attrs in doc.tags if "src" in attrs or "href" in attrs]
    assert [attrs.get("type") for attrs in doc.scripts()] == ["application/json", None]
    assert "require(" not in page and "requirejs" not in page.lower()


def test_the_policy_allows_exactly_the_inline_viewer_script(widget):
    page = widget.to_html()
    script = re.search(r"<script>(.*)</script>\n</body>", page, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}';" in page
    assert script == export.STANDALONE_JS.read_text(encoding="utf-8")


def test_with_a_path_writes_the_same_document_and_returns_none(widget, tmp_path):
    target = tmp_path / "attention.html"
    assert widget.to_html(target) is None
    assert target.read_text(encoding="utf-8") == widget.to_html()
    assert os.listdir(tmp_path) == ["attention.html"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask, "mode as for any file the user saves, not mkstemp's 0600"


def test_a_path_in_a_missing_folder_says_so_and_writes_nothing(widget, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist; create it first"):
        widget.to_html(tmp_path / "missing" / "attention.html")
    assert os.listdir(tmp_path) == []


def test_a_folder_as_path_asks_for_a_file_name(widget, tmp_path):
    with pytest.raises(IsADirectoryError, match="give a file name"):
        widget.to_html(tmp_path)


def test_a_read_only_folder_says_which_folder(widget, tmp_path, monkeypatch):
    def read_only(**_options):  # what the OS says for a folder the user cannot write (root can write anywhere)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(files.tempfile, "mkstemp", read_only)
    with pytest.raises(PermissionError, match=f"no permission to create files in {tmp_path}"):
        widget.to_html(tmp_path / "attention.html")


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(widget, tmp_path, monkeypatch):
    target = tmp_path / "attention.html"
    target.write_text("the previous export")

    def disk_full(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", disk_full)
    with pytest.raises(OSError, match="No space left"):
        widget.to_html(target)
    assert target.read_text() == "the previous export"
    assert os.listdir(tmp_path) == ["attention.html"]


# -- what the page holds --------------------------------------------------------------------------
def test_the_page_opens_on_the_current_selection(widget):
    widget.layer, widget.head, widget.heads, widget.token = 2, 3, [1, 3], 4
    widget.view, widget.theme, widget.pair_filter = "matrix", "dark", "AB"
    traits = embedded_state(widget.to_html())["traits"]
    assert {name: traits[name] for name in wire.SELECTION_TRAITS} == {
        "layer": 2, "head": 3, "heads": [1, 3], "token": 4, "stack": "self",
        "view": "matrix", "theme": "dark", "pair_filter": "AB", "step": None, "score": "",
    }  # fmt: skip
    assert traits["meta"]["sides"] == widget.meta["sides"]


def test_every_chunk_is_embedded_exactly_when_there_is_room(widget):
    state = embedded_state(widget.to_html())
    expected = {key: wire.head_chunk(widget.capture, *wire.parse_head_key(key))[0]
                for key in wire.all_head_keys(widget.capture)}  # fmt: skip
    assert decoded(state) == expected
    assert decoded(state, "_thumbs") == wire.all_thumbnails(widget.capture)
    assert state["traits"]["meta"]["chunks_complete"] is True
    assert "p" not in Document(widget.to_html()).text, "no notice when nothing is left out"


def test_a_tight_budget_keeps_the_head_on_screen_first_and_says_what_is_left_out():
    widget = make_widget([f"w{i}" for i in range(40)], layers=6, heads=4, layer=4, head=2, derived=False)
    widget.heads = [1, 2]
    full = len(widget.to_html().encode())
    chunk_text = len(embedded_state(widget.to_html())["binary"]["_chunks"]["self/4/2"])
    budget = full - 12 * chunk_text  # room for about half of the 24 heads
    page = widget.to_html(size_budget=budget)
    assert len(page.encode()) <= budget

    state = embedded_state(page)
    kept = list(state["binary"]["_chunks"])
    assert kept[:4] == ["self/4/2", "self/4/1", "self/4/0", "self/4/3"] and len(kept) < 24
    assert len(state["binary"]["_thumbs"]) == 6, "every thumbnail whatever the budget"
    assert state["traits"]["meta"]["chunks_complete"] is False
    notice = Document(page).text["p"]
    assert f"leaves out {24 - len(kept)} of 24 attention heads to stay" in notice
    assert f"under the {budget / 1e3:.3g} kB size budget" in notice
    assert "the model view still shows every head's thumbnail" in notice


def encoder_decoder(**options) -> AttentionWidget:
    encoder, decoder = ["<s>", "ein", "Haus", "</s>"], ["<pad>", "a", "house"]
    return AttentionWidget.from_attention(
        encoder_attention=random_attention(2, 2, 4),
        decoder_attention=random_attention(2, 2, 3, seed=1),
        cross_attention=np.ones((2, 2, 3, 4), dtype=np.float32) / 4,
        encoder_tokens=encoder,
        decoder_tokens=decoder,
        **options,
    )


def test_a_budget_keeps_the_stack_on_screen_before_the_others():
    widget = encoder_decoder(stack="cross", layer=1)
    order = list(embedded_state(widget.to_html())["binary"]["_chunks"])
    layers = ["cross/1", "cross/0", "encoder/0", "encoder/1", "decoder/0", "decoder/1"]
    assert order[:12] == [f"{layer}/{head}" for layer in layers for head in range(2)], "recorded stacks first"
    derived = [name for name in widget.capture.stacks if name not in widget.capture.recorded_stacks]
    assert order[12:] == wire.all_head_keys(widget.capture, tuple(derived)), "then the derived ones (rollout, words)"


def test_a_budget_too_small_for_the_page_itself_is_an_error(widget):
    with pytest.raises(ValueError, match="cannot hold even the page without full attention .*thumbnail"):
        widget.to_html(size_budget=1000)


@pytest.mark.parametrize("budget", ["25MB", 2.5e7, True])
def test_the_budget_is_a_whole_number_of_bytes(widget, budget):
    with pytest.raises(TypeError, match="number of bytes"):
        widget.to_html(size_budget=budget)


def test_no_budget_embeds_everything():
    widget = make_widget([f"w{i}" for i in range(40)], layers=6)
    every_head = wire.all_head_keys(widget.capture)
    assert len(every_head) == 6 * (4 + 4 + 1 + 1), "the recorded heads, their words, the rollout and its words"
    assert list(embedded_state(widget.to_html(size_budget=None))["binary"]["_chunks"]) == every_head


# -- escaping -------------------------------------------------------------------------------------
def test_hostile_tokens_and_title_stay_data():
    widget = make_widget(INJECTION_TOKENS)
    title = "</title><script>window.__pwned=6</script>\x00"
    page = widget.to_html(title=title)
    doc = Document(page)

    # The parser sees only the elements the exporter writes, whatever the tokens hold.
    assert [tag for tag, _attrs in doc.tags] == [
        "html", "head", "meta", "meta", "meta", "meta", "title", "style", "body", "h1", "script", "div", "script",
    ]  # fmt: skip
    assert not re.search(r"<(img|svg)\b", page, re.I)
    assert page.lower().count("</script") == 2 and page.count("<!--") == 0
    assert doc.text["title"] == doc.text["h1"] == title.replace("\x00", "\ufffd")
    # The state round-trips every display token exactly, markup and all.
    shown = widget.meta["sides"]["input"]["tokens"]
    assert "</script><script>window.__pwned=2</script>" in shown and "<!--" in shown
    assert embedded_state(page)["traits"]["meta"]["sides"]["input"]["tokens"] == shown


def test_a_title_utf8_cannot_encode_still_writes(widget, tmp_path):
    widget.to_html(tmp_path / "page.html", title="broken \ud800 surrogate")
    assert Document((tmp_path / "page.html").read_text(encoding="utf-8")).text["title"] == "broken \ufffd surrogate"


def test_the_default_title_is_the_start_of_the_text_with_the_pair_marked(widget):
    assert Document(widget.to_html()).text["title"] == "attnwidget — leaves fall / in autumn"


# -- size at scale --------------------------------------------------------------------------------
def test_minilm_at_512_tokens_fits_25_mb_with_every_layer_and_every_heads_neuron_data(minilm):
    model, tokenizer = minilm
    text = "The ferry crossed the river at dawn, loaded with wagons, animals and travellers. " * 60
    tokens = tokenizer(text, truncation=True, max_length=512)["input_ids"]
    widget = AttentionWidget(model, tokenizer.decode(tokens[1:-1]), tokenizer=tokenizer)
    assert len(widget.meta["sides"]["input"]["tokens"]) == 512
    page = widget.to_html()
    assert len(page.encode()) <= 25_000_000
    meta = embedded_state(page)["traits"]["meta"]
    assert meta["chunks_complete"] is True
    assert meta["query_key"] == {"available": True, "complete": True}, "one float32 record per head, all 72 in"


def test_a_model_widget_carries_the_neuron_views_records_while_they_fit(minilm):
    model, tokenizer = minilm
    widget = AttentionWidget(model, "leaves fall in autumn", tokenizer=tokenizer, layer=2)
    state = embedded_state(widget.to_html())
    assert decoded(state, "_qk") == {
        key: wire.query_key_record(widget.capture, *wire.parse_head_key(key))
        for key in wire.all_head_keys(widget.capture, ("self",))  # derived stacks have no queries or keys
    }
    assert state["traits"]["meta"]["query_key"] == {"available": True, "complete": True}

    # Attention comes first: a budget short of the whole drops neuron data, never attention. Records are kept in
    # the order of attention heads: the focused head of the layer on screen first, the last layer's last.
    page = widget.to_html(size_budget=len(widget.to_html().encode()) - 1)
    state = embedded_state(page)
    assert len(state["binary"]["_chunks"]) == len(wire.all_head_keys(widget.capture))
    assert state["traits"]["meta"]["chunks_complete"] is True
    kept = list(state["binary"]["_qk"])
    assert kept[:12] == [f"self/2/{head}" for head in range(12)] and "self/5/11" not in kept
    assert state["traits"]["meta"]["query_key"] == {"available": True, "complete": False}
    assert f"leaves out {72 - len(kept)} of 72 neuron-view heads" in page


def test_a_page_holds_no_more_than_its_memory_allows_however_well_it_compresses(widgets, monkeypatch):
    capture = make_capture(layers=2, heads=3, tokens=6)
    head = wire.head_bytes(capture, "self", 0)
    monkeypatch.setattr(export, "PAGE_MEMORY_BYTES", 4 * head)  # as 4096-token heads: 16 MiB each, 1/50 packed
    widget = widgets(capture, view="model", preload_qk_bytes=0)
    page = export.export_page(capture, widget.selection)
    state = embedded_state(page.html)
    assert len(state["binary"]["_chunks"]) == 4, "as many heads as the memory holds, whatever the size budget"
    notice = re.search(r'role="note">(.*?)</p>', page.html, re.S)[1]
    assert page.memory_bound and "memory" in notice and "size_budget" not in notice, "a larger budget would not help"
