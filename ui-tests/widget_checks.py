"""What the sharing-path tests check on a rendered widget, whichever page hosts it."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

from playwright.sync_api import Locator, Page, expect

HEADS = 12  # all-MiniLM-L6-v2
FOCUSED = re.compile(r"\baw-chip--focused\b")
MATRIX_READOUT = re.compile(r"^query (\d+) “.*” → key (\d+) “.*”: ([\d.]+)")


# The pixels of a canvas clearly red (A attends more) and clearly blue (B does): a difference's diverging colours.
RED_AND_BLUE = """canvas => {
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let red = 0, blue = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i] - data[i + 2] > 40) red++;
    if (data[i + 2] - data[i] > 40) blue++;
  }
  return [red, blue];
}"""

def matrix_readouts(page: Page, view: Locator, steps: int = 40) -> list[tuple[int, int, float]]:
    """(query, key, value shown) of the matrix view's readout with the pointer at points along its canvas's rising
    diagonal, where the pointer lands on a cell: the map is as wide as the canvas's height allows."""
    box = view.locator(".aw-matrix canvas").first.bounding_box()
    found = []
    for step in range(1, steps):
        page.mouse.move(box["x"] + step / steps * box["width"], box["y"] + (1 - step / steps) * box["height"])
        shown = MATRIX_READOUT.match(view.locator(".aw-readout").text_content() or "")
        if shown:
            found.append((int(shown[1]), int(shown[2]), float(shown[3])))
    return found


def chip(widget: Locator, head: int) -> Locator:
    return widget.get_by_role("button", name=f"Head {head}", exact=True)


def assert_minilm_rendered(widget: Locator, tokens: list[str]) -> None:
    """All 12 head chips, and the query tokens Python sent, in order."""
    expect(widget).to_be_visible(timeout=60_000)
    expect(widget.get_by_role("button", name=re.compile(r"^Head \d+$"))).to_have_count(HEADS)
    shown = widget.get_by_role("group", name="Query tokens").get_by_role("button")
    assert shown.all_inner_texts() == tokens


def assert_selection(widget: Locator, layer: int, focused: int, hidden: int) -> None:
    """The page shows the layer, focused head and hidden head Python had."""
    expect(widget.get_by_label("Layer", exact=True)).to_have_value(str(layer))
    expect(chip(widget, focused)).to_have_class(FOCUSED)
    expect(chip(widget, hidden)).to_have_attribute("aria-pressed", "false")
    visible = next(head for head in range(HEADS) if head not in (focused, hidden))
    expect(chip(widget, visible)).to_have_attribute("aria-pressed", "true")


def assert_head_click_redraws(widget: Locator, head: int) -> None:
    """A click on a head's chip shows that head alone and focuses it, and the drawing changes."""
    canvas = widget.locator("canvas").first
    before = canvas.screenshot()
    chip(widget, head).click()
    expect(chip(widget, head)).to_have_attribute("aria-pressed", "true")
    expect(chip(widget, head)).to_have_class(FOCUSED)
    other = next(h for h in range(HEADS) if h != head)
    expect(chip(widget, other)).to_have_attribute("aria-pressed", "false")
    assert canvas.screenshot() != before, f"showing head {head} alone left the attention drawing as it was"


def assert_shown_equal(shown: list[str], exact: list[float], what: str) -> None:
    """Each shown number is the capture's value to the three significant digits shown."""
    assert len(shown) == len(exact)
    for k, (text, value) in enumerate(zip(shown, exact)):
        digit = 10 ** (int(f"{abs(value):e}".split("e")[1]) - 2) if value else 1e-3
        assert abs(float(text) - value) <= digit / 2 * (1 + 1e-6), f"{what} of key {k}: shown {text}, capture {value}"


def js_shown(value: float, digits: int = 3) -> str:
    """`value` as the views show it (js/draw/format.ts `shown`): JavaScript's `toPrecision(digits)`, which rounds the
    exact binary value half away from zero, and writes exponents from 1e-7 down and from 10^digits up."""
    if value == 0:
        return "0"
    exact = Decimal(value)
    exponent = exact.adjusted()
    rounded = exact.quantize(Decimal(1).scaleb(exponent - digits + 1), rounding=ROUND_HALF_UP)
    if rounded.adjusted() > exponent:  # 9.995 shows as 10.0
        exponent += 1
        rounded = exact.quantize(Decimal(1).scaleb(exponent - digits + 1), rounding=ROUND_HALF_UP)
    if exponent < -6 or exponent >= digits:
        return f"{rounded.scaleb(-exponent):.{digits - 1}f}e{'+' if exponent >= 0 else '-'}{abs(exponent)}"
    return f"{rounded:.{max(0, digits - 1 - exponent)}f}"

