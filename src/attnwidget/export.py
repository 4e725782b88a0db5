"""One self-contained HTML file of a capture: bundle, state and attention inline, no kernel, no network.

The page holds the selection and `meta` as JSON in a `<script type="application/json">`, every
attention chunk (and query-key record of the neuron view) that fits the size budget,
zlib-compressed and base64, the CSS, and `static/standalone.js`, which stands in for the kernel
and mounts the same views as the notebook (docs/data-contract.md, "Exported pages").
It works from the capture and a selection, so the widget and the command line share it.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import pathlib
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import files, wire
from .capturing import Capture

STATIC = pathlib.Path(__file__).parent / "static"
STANDALONE_JS = STATIC / "standalone.js"
STANDALONE_CSS = STATIC / "standalone.css"

PAGE_MEMORY_BYTES = 256 * 2**20
"""The most a page under a size budget unpacks into memory, as the notebook widget's cache holds (js/chunks.ts,
CACHE_BYTES): it inflates every value as it opens, and a long input's attention compresses far more than it
unpacks (at 4096 tokens a head is 16 MiB in memory and a few hundred kB in the page)."""
DEFAULT_SIZE_BUDGET = 25_000_000
"""Bytes an export may take by default (25 MB). MiniLM at 512 tokens: 3.2 MB of attention, the rest for neuron data."""

_ZLIB_LEVEL = 6  # level 9 saves another 12% at ten times the time

# In JSON these characters only occur inside strings, where a \u escape means the same thing;
# escaped, no token can close the <script> element or start a comment the HTML parser honours.
_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})
# The HTML parser leaves a classic <script> only at "</script"; "<!--" and "<script" inside
# one change how it looks for that end. The bundle must contain none of them.
_SCRIPT_BREAKERS = ("</script", "<!--", "<script")

_PART_KINDS = {wire.ATTENTION_TRAIT: ("attention", "heads"), wire.QUERY_KEY_TRAIT: ("neuron-view", "heads")}
"""How a page and its notices name the parts of each binary trait a budget may leave out: a head of attention,
a head of neuron-view data."""


@dataclass(frozen=True)
class _Part:
    """One binary value of the page a budget may leave out: a head of `_chunks` or of `_qk`, keyed alike."""

    trait: str
    key: str


@dataclass(frozen=True)
class LeftOut:
    """How many parts of one kind ("attention" heads, "neuron-view" heads) a size budget left out of a page."""

    kind: str
    count: int
    of: int
    unit: str

    def __str__(self) -> str:
        return f"{self.count} of {self.of} {self.kind} {self.unit}"


@dataclass(frozen=True)
class ExportedPage:
    """An exported page, and what its size budget left out of it (nothing when `left_out` is empty)."""

    html: str
    size_budget: int | None
    left_out: tuple[LeftOut, ...]
    memory_bound: bool = False
    """Whether `PAGE_MEMORY_BYTES` left parts out, which no larger size budget would bring in."""

    def left_out_text(self) -> str:
        """e.g. "60 of 72 attention heads and 72 of 72 neuron-view heads"; empty when nothing is left out."""
        return _listed(self.left_out)


class BudgetTooSmall(ValueError):
    """The size budget cannot hold the page even with thumbnails alone; `needed` is what it takes."""

    def __init__(self, size_budget: int, needed: int, budget_option: str):
        super().__init__(
            f"{budget_option} of {size_budget:,} bytes cannot hold even the page without full attention "
            f"({needed:,} bytes: the viewer, the CSS, the tokens and every head's thumbnail); raise {budget_option}"
        )
        self.size_budget = size_budget
        self.needed = needed


def export_page(
    capture: Capture,
    selection: Mapping[str, Any],
    path: str | os.PathLike[str] | None = None,
    *,
    size_budget: int | None = DEFAULT_SIZE_BUDGET,
    title: str | None = None,
    budget_option: str = "size_budget",
    thumbnails: Mapping[str, bytes] | None = None,
    head_scores: Mapping[str, Any] | None = None,
) -> ExportedPage:
    """The page of `capture` opening on `selection` (every name of `wire.SELECTION_TRAITS`).

    `thumbnails` are the capture's `wire.all_thumbnails`, when the caller has them already (a widget does: at
    4096 tokens × 32 × 32 they take a minute to compute). `head_scores` is the widget's `meta.head_scores`, for the
    model view's atlas.
    With `path`, the page is also written there, atomically; the path is checked before any work.
    `budget_option` is how the caller's users raise the budget, named in the page's notice and in
    `BudgetTooSmall` (the command line's is "--size-budget").
    """
    budget = _checked_budget(size_budget)
    target = None if path is None else files.checked_target(path)
    title = _default_title(capture) if title is None else str(title)
    thumbnails = wire.all_thumbnails(capture) if thumbnails is None else thumbnails
    page = _render(capture, selection, budget, title, budget_option, thumbnails, head_scores)
    if target is not None:
        files.write_atomically(target, page.html)
    return page


# -- the document --------------------------------------------------------------------------------
def _render(
    capture: Capture,
    selection: Mapping[str, Any],
    budget: int | None,
    title: str,
    budget_option: str,
    all_thumbnails: Mapping[str, bytes],
    head_scores: Mapping[str, Any] | None = None,
) -> ExportedPage:
    script, css = _read_standalone()
    selection = {name: selection[name] for name in wire.SELECTION_TRAITS}
    parts = _parts(capture, selection)
    thumbnails = {key: _compressed(data) for key, data in all_thumbnails.items()}

    def document(kept: dict[_Part, str], notice: str) -> str:
        binary: dict[str, dict[str, str]] = {wire.THUMBNAIL_TRAIT: thumbnails, **{part.trait: {} for part in parts}}
        for part, text in kept.items():
            binary[part.trait][part.key] = text
        state = {
            "traits": {**selection, wire.META_TRAIT: _exported_meta(capture, parts, kept, head_scores)},
            "binary": binary,
            "compression": wire.EXPORT_COMPRESSION,
        }
        return _page(title, css, script, _script_safe_json(state), notice)

    if budget is None:
        return ExportedPage(document({part: _compressed(_raw(capture, part)) for part in parts}, ""), budget, ())
    # Room is counted with the longest notice in place, so whatever is left out, the page fits.
    longest = max(_notice(_left_out(parts, {}), budget, budget_option, bound) for bound in (False, True))
    room = budget - _size(document({}, longest))
    if room < 0:
        raise BudgetTooSmall(budget, budget - room, budget_option)
    kept: dict[_Part, str] = {}
    gave_up: set[str] = set()
    memory = PAGE_MEMORY_BYTES
    memory_bound = False
    for part in parts:
        if part.trait in gave_up:
            continue
        raw = _raw(capture, part)
        text = _compressed(raw)
        first_of_its_kind = not any(other.trait == part.trait for other in kept)
        cost = len(_script_safe_json(part.key)) + len(text) + 3 + (0 if first_of_its_kind else 1)  # "key":"text",
        if cost <= room and len(raw) <= memory:
            kept[part] = text
            room -= cost
            memory -= len(raw)
        else:
            memory_bound = memory_bound or cost <= room
            # Parts of one kind weigh about the same: spare computing and compressing the rest (1024 heads at
            # 4096 tokens would take minutes).
            gave_up.add(part.trait)
    left_out = _left_out(parts, kept)
    notice = _notice(left_out, budget, budget_option, memory_bound) if left_out else ""
    return ExportedPage(document(kept, notice), budget, left_out, memory_bound)


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
        f'<script type="application/json" {wire.STATE_ELEMENT_ATTRIBUTE}>{state_json}</script>\n'
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


def _default_title(capture: Capture) -> str:
    side = capture.input_side
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
def _parts(capture: Capture, selection: Mapping[str, Any]) -> list[_Part]:
    """Every binary value of the page a budget may leave out, in the order it keeps them.

    Attention heads before queries and keys (every view but one needs them), each kind in the same order: the
    focused head, the other visible heads of the layer on screen, the rest of that layer, of its stack, then the
    other stacks, recorded ones before derived ones (`capture.stacks` lists them so). Derived stacks have no queries
    or keys.
    """
    stack, layer, head, visible = (selection[name] for name in ("stack", "layer", "head", "heads"))

    def head_rank(key: str) -> tuple[bool, ...]:
        other_stack, other_layer, other_head = wire.parse_head_key(key)
        same_layer = other_stack == stack and other_layer == layer
        return (not same_layer or other_head != head, not same_layer or other_head not in visible,
                not same_layer, other_stack != stack)

    ranked = sorted(wire.all_head_keys(capture), key=head_rank)
    parts = [_Part(wire.ATTENTION_TRAIT, key) for key in ranked]
    if wire.has_query_key(capture):
        recorded = capture.recorded_stacks
        parts += [_Part(wire.QUERY_KEY_TRAIT, key) for key in ranked if wire.parse_head_key(key)[0] in recorded]
    return parts


def _raw(capture: Capture, part: _Part) -> bytes:
    """The part's bytes as the page holds them once inflated."""
    if part.trait == wire.ATTENTION_TRAIT:
        return wire.head_chunk(capture, *wire.parse_head_key(part.key))[0]
    return wire.query_key_record(capture, *wire.parse_head_key(part.key))



def _compressed(data: bytes) -> str:
    return base64.b64encode(zlib.compress(data, _ZLIB_LEVEL)).decode("ascii")


def _exported_meta(
    capture: Capture, parts: list[_Part], kept: dict[_Part, str], head_scores: Mapping[str, Any] | None
) -> dict[str, Any]:
    """`meta` with its completeness flags telling the truth about this page."""
    def complete(trait: str) -> bool:
        return all(part in kept for part in parts if part.trait == trait)

    return wire.build_meta(
        capture,
        chunks_complete=complete(wire.ATTENTION_TRAIT),
        query_key_complete=complete(wire.QUERY_KEY_TRAIT),
        head_scores=None if head_scores is None else dict(head_scores),
    )


def _left_out(parts: list[_Part], kept: dict[_Part, str]) -> tuple[LeftOut, ...]:
    counts = []
    for trait, (kind, unit) in _PART_KINDS.items():
        of_trait = [part for part in parts if part.trait == trait]
        count = sum(part not in kept for part in of_trait)
        if count:
            counts.append(LeftOut(kind, count, len(of_trait), unit))
    return tuple(counts)


def _listed(left_out: tuple[LeftOut, ...]) -> str:
    return " and ".join(str(entry) for entry in left_out)


def _notice(left_out: tuple[LeftOut, ...], budget: int, budget_option: str, memory_bound: bool = False) -> str:
    if memory_bound:
        return (
            f"This export leaves out {_listed(left_out)} to stay under the {PAGE_MEMORY_BYTES // 2**20} MiB a page "
            "may hold in the browser's memory, where it unpacks everything as it opens; those show as unavailable, "
            "though the model view still shows every head's thumbnail. The notebook widget loads heads as you "
            "open them."
        )
    return (
        f"This export leaves out {_listed(left_out)} to stay under the {readable_size(budget)} size budget; "
        "those show as unavailable, though the model view still shows every head's thumbnail. "
        f"Export again with a larger {budget_option} to include them."
    )


def readable_size(size: int) -> str:
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


# -- the viewer ----------------------------------------------------------------------------------------
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
