"""One self-contained HTML file of a widget: bundle, state and attention inline, no kernel, no network.

The page holds the widget's current selection and `meta` as JSON in a
`<script type="application/json">`, every attention chunk (and query-key record of the
neuron view) that fits the size budget, zlib-compressed and base64, the CSS, and
`static/standalone.js`, which stands in for the kernel and mounts the same views as the
notebook (docs/data-contract.md, "Exported pages").
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import pathlib
import tempfile
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import wire

if TYPE_CHECKING:
    from .widget import AttentionWidget

STATIC = pathlib.Path(__file__).parent / "static"
STANDALONE_JS = STATIC / "standalone.js"
STANDALONE_CSS = STATIC / "standalone.css"

DEFAULT_SIZE_BUDGET = 25_000_000
"""Bytes an export may take by default (25 MB). MiniLM at 512 tokens: 3.2 MB of attention, the rest for neuron data."""

COMPRESSION = "deflate"
"""The `DecompressionStream` format of every binary value: a zlib stream. Attention compresses about 8x."""
_ZLIB_LEVEL = 6  # level 9 saves another 12% at ten times the time

SELECTION_TRAITS = ("layer", "head", "heads", "token", "stack", "view", "theme", "pair_filter")
STATE_ELEMENT_ATTRIBUTE = "data-attnwidget-export"

# In JSON these characters only occur inside strings, where a \u escape means the same thing;
# escaped, no token can close the <script> element or start a comment the HTML parser honours.
_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})
# The HTML parser leaves a classic <script> only at "</script"; "<!--" and "<script" inside
# one change how it looks for that end. The bundle must contain none of them.
_SCRIPT_BREAKERS = ("</script", "<!--", "<script")


ATTENTION_TRAIT = "_chunks"
QUERY_KEY_TRAIT = "_qk"
_PART_LABELS = {ATTENTION_TRAIT: "attention", QUERY_KEY_TRAIT: "neuron-view"}


@dataclass(frozen=True)
class _Part:
    """One binary value of the page: one layer of one stack of a binary trait, keyed like `_chunks`."""

    trait: str
    key: str


def to_html(
    widget: AttentionWidget,
    path: str | os.PathLike[str] | None = None,
    *,
    size_budget: int | None = DEFAULT_SIZE_BUDGET,
    title: str | None = None,
) -> str | None:
    """The page as a string, or written to `path` (atomically) and None returned."""
    budget = _checked_budget(size_budget)
    target = None if path is None else _checked_target(path)
    page = _render(widget, budget, _default_title(widget) if title is None else str(title))
    if target is None:
        return page
    _write_atomically(target, page)
    return None


# -- the document --------------------------------------------------------------------------------
def _render(widget: AttentionWidget, budget: int | None, title: str) -> str:
    script, css = _read_standalone()
    selection = {name: getattr(widget, name) for name in SELECTION_TRAITS}
    parts = _parts(widget, selection["stack"], selection["layer"])

    def document(kept: dict[_Part, str], notice: str) -> str:
        binary: dict[str, dict[str, str]] = {part.trait: {} for part in parts}
        for part, text in kept.items():
            binary[part.trait][part.key] = text
        state = {
            "traits": {**selection, "meta": _exported_meta(widget.meta, parts, kept)},
            "binary": binary,
            "compression": COMPRESSION,
        }
        return _page(title, css, script, _script_safe_json(state), notice)

    if budget is None:
        return document({part: _encoded(widget, part) for part in parts}, "")
    # Room is counted with the longest notice in place, so whatever is left out, the page fits.
    room = budget - _size(document({}, _notice(parts, {}, budget)))
    if room < 0:
        raise ValueError(
            f"size_budget={budget:,} bytes cannot hold even the page without attention "
            f"({budget - room:,} bytes: the viewer, the CSS and the tokens); raise size_budget"
        )
    kept: dict[_Part, str] = {}
    gave_up: set[str] = set()
    for part in parts:
        if part.trait in gave_up:
            continue
        text = _encoded(widget, part)
        first_of_its_kind = not any(other.trait == part.trait for other in kept)
        cost = len(_script_safe_json(part.key)) + len(text) + 3 + (0 if first_of_its_kind else 1)  # "key":"text",
        if cost <= room:
            kept[part] = text
            room -= cost
        elif part.trait == QUERY_KEY_TRAIT:
            gave_up.add(part.trait)  # records of one capture weigh about the same; spare compressing the rest
    return document(kept, "" if len(kept) == len(parts) else _notice(parts, kept, budget))


def _page(title: str, css: str, script: str, state_json: str, notice: str) -> str:
    # The one script that may run is ours, named by its hash: markup smuggled into the page
    # by data could not run even if some escaping failed.
    script_hash = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    policy = (
        f"default-src 'none'; script-src 'sha256-{script_hash}'; style-src 'unsafe-inline'; "
        "img-src data: blob:; base-uri 'none'; form-action 'none'"
    )
    notice_html = f'<p class="attnwidget-export-notice" role="note">{_text(notice)}</p>\n' if notice else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="color-scheme" content="light dark">\n'
        f"<title>{_text(title)}</title>\n"
        f"<style>\n{_PAGE_CSS}{css}\n</style>\n</head>\n<body>\n"
        f'<h1 class="attnwidget-export-title">{_text(title)}</h1>\n'
        f"{notice_html}"
        f'<script type="application/json" {STATE_ELEMENT_ATTRIBUTE}>{state_json}</script>\n'
        '<div class="attnwidget-export-root"></div>\n'
        f"<script>{script}</script>\n"
        "</body>\n</html>\n"
    )


_PAGE_CSS = """\
body { margin: 16px; font-family: system-ui, sans-serif; }
.attnwidget-export-title { font-size: 1.1rem; font-weight: 600; margin: 0 0 8px; overflow-wrap: anywhere; }
.attnwidget-export-notice { margin: 0 0 12px; padding: 8px 12px; border: 1px solid #b58900;
  border-radius: 4px; background: #fdf6e3; color: #5c4400; }
"""


def _text(value: str) -> str:
    """HTML text and attribute content. NUL and other C0 controls, which HTML forbids, and lone
    surrogates, which UTF-8 cannot encode, become U+FFFD."""
    cleaned = "".join("\ufffd" if _unwritable(char) else char for char in value)
    return html.escape(cleaned, quote=True)


def _unwritable(char: str) -> bool:
    code = ord(char)
    return (code < 32 and char not in "\t\n\r") or 0xD800 <= code <= 0xDFFF


def _script_safe_json(value: Any) -> str:
    # ensure_ascii escapes U+2028/2029, NUL and lone surrogates too, so the text is plain ASCII.
    return json.dumps(value, ensure_ascii=True, separators=(",", ":")).translate(_SCRIPT_SAFE)


def _size(page: str) -> int:
    return len(page.encode("utf-8"))


def _default_title(widget: AttentionWidget) -> str:
    side = widget.capture.input_side
    words = []
    for index, (token, special) in enumerate(zip(side.tokens, side.special)):
        if index == side.segment_b_start:
            words.append("/")  # a sentence pair reads as "first text / second text"
        if not special:
            words.append(token)
    words = " ".join(words)
    preview = words if len(words) <= 60 else words[:59] + "…"
    return f"attnwidget — {preview}" if preview else "attnwidget"


# -- binary parts and the budget ------------------------------------------------------------------
def _parts(widget: AttentionWidget, stack: str, layer: int) -> list[_Part]:
    """Every binary value of the page, in the order a budget keeps them.

    Attention before queries and keys (every view but one needs it); within each, the layer
    on screen, then the rest of its stack, then the other stacks.
    """
    keys = wire.all_chunk_keys(widget.capture)
    first = wire.chunk_key(stack, layer)
    keys.sort(key=lambda key: (key != first, wire.parse_chunk_key(key)[0] != stack))
    traits = [ATTENTION_TRAIT]
    if widget.meta.get("query_key", {}).get("available"):
        traits.append(QUERY_KEY_TRAIT)
    return [_Part(trait, key) for trait in traits for key in keys]


def _encoded(widget: AttentionWidget, part: _Part) -> str:
    stack, layer = wire.parse_chunk_key(part.key)
    if part.trait == ATTENTION_TRAIT:
        data = wire.attention_chunk(widget.capture, stack, layer)[0]
    else:
        data = wire.query_key_record(widget.capture, stack, layer)
    return base64.b64encode(zlib.compress(data, _ZLIB_LEVEL)).decode("ascii")


def _exported_meta(meta: dict[str, Any], parts: list[_Part], kept: dict[_Part, str]) -> dict[str, Any]:
    """`meta` with its completeness flags telling the truth about this page."""
    def complete(trait: str) -> bool:
        return all(part in kept for part in parts if part.trait == trait)

    exported = {**meta, "chunks_complete": complete(ATTENTION_TRAIT)}
    if "query_key" in meta:
        exported["query_key"] = {**meta["query_key"], "complete": complete(QUERY_KEY_TRAIT)}
    return exported


def _notice(parts: list[_Part], kept: dict[_Part, str], budget: int) -> str:
    counts = []
    for trait, label in _PART_LABELS.items():
        of_trait = [part for part in parts if part.trait == trait]
        left_out = sum(part not in kept for part in of_trait)
        if left_out:
            counts.append(f"{left_out} of {len(of_trait)} {label} layers")
    return (
        f"This export leaves out {' and '.join(counts)} to stay under the {_readable_size(budget)} size budget; "
        "those show as unavailable. Export again with a larger size_budget to include them."
    )


def _readable_size(size: int) -> str:
    return f"{size / 1e6:.3g} MB" if size >= 1e6 else f"{size / 1e3:.3g} kB"


def _checked_budget(size_budget: Any) -> int | None:
    if size_budget is None:
        return None
    if isinstance(size_budget, bool) or not isinstance(size_budget, int):
        raise TypeError(
            f"size_budget is a number of bytes (an int, e.g. 25_000_000) or None for no limit; "
            f"got {size_budget!r}"
        )
    if size_budget <= 0:
        raise ValueError(f"size_budget must be a positive number of bytes; got {size_budget}")
    return size_budget


# -- files -----------------------------------------------------------------------------------------
def _read_standalone() -> tuple[str, str]:
    for path in (STANDALONE_JS, STANDALONE_CSS):
        if not path.is_file():
            # Built by the same `npm run build` as the notebook bundle, so an old build may lack only this.
            raise FileNotFoundError(
                f"cannot export: {path} is missing; run `npm run build` in the attnwidget checkout, "
                "or reinstall attnwidget with `pip install .`"
            )
    script = STANDALONE_JS.read_text(encoding="utf-8")
    breaker = next((text for text in _SCRIPT_BREAKERS if text in script.lower()), None)
    if breaker:
        raise RuntimeError(f"{STANDALONE_JS} contains {breaker!r}, so it cannot be inlined; rebuild it with build.mjs")
    return script, STANDALONE_CSS.read_text(encoding="utf-8")


def _checked_target(path: str | os.PathLike[str]) -> pathlib.Path:
    target = pathlib.Path(os.fspath(path)).expanduser()
    if target.is_dir():
        raise IsADirectoryError(f"{target} is a folder; give a file name, e.g. {target / 'attention.html'}")
    if not target.parent.is_dir():
        raise FileNotFoundError(f"cannot write {target}: the folder {target.parent} does not exist; create it first")
    return target


def _write_atomically(target: pathlib.Path, page: str | bytes) -> None:
    """Write next to `target`, then rename over it: a reader never sees half a page, a failure leaves nothing.

    `page` is text (written as UTF-8) or bytes (an image, src/attnwidget/image.py)."""
    try:
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except PermissionError as error:
        raise PermissionError(f"cannot write {target}: no permission to create files in {target.parent}") from error
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(page.encode("utf-8") if isinstance(page, str) else page)
        # mkstemp makes the file private (0600); a page is meant to be shared like any file the user saves.
        os.chmod(temporary, _mode_for(target))
        os.replace(temporary, target)
    except BaseException:
        pathlib.Path(temporary).unlink(missing_ok=True)
        raise


def _mode_for(target: pathlib.Path) -> int:
    if target.exists():
        return target.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask
