"""What a BertViz call hands back: `display_mode` and `html_action` in terms of our widget."""

from __future__ import annotations

from ..widget import AttentionWidget

DISPLAY_MODES = ("dark", "light", "auto")
"""BertViz's two modes, and ours that follows the notebook's theme."""
HTML_ACTIONS = ("view", "return")


def check_display_mode(display_mode: object) -> str:
    if display_mode not in DISPLAY_MODES:
        raise ValueError(f"display_mode must be one of {list(DISPLAY_MODES)}, not {display_mode!r}")
    return str(display_mode)


def check_html_action(html_action: object) -> str:
    # Checked before any work: a typo should not cost a model run.
    if html_action not in HTML_ACTIONS:
        raise ValueError(
            f"html_action must be 'view' (show the widget) or 'return' (get the page as IPython HTML), "
            f"not {html_action!r}"
        )
    return str(html_action)


def deliver(widget: AttentionWidget, html_action: str):
    """The widget for 'view'; for 'return', an `IPython.display.HTML` of the self-contained page.

    'view' returns the widget instead of displaying it here, so a cell ending in the call shows
    it once, as the cell's value (displaying it too would show it twice). A call that is not the
    last line of its cell shows nothing until the widget is passed to `display()`.
    """
    if html_action == "view":
        return widget
    from IPython.display import HTML

    try:
        page = widget.to_html()
    finally:
        # Only the page was asked for: the kernel need not keep the widget (or its layout) alive.
        widget.layout.close()
        widget.close()
    # BertViz code reads the page from `.data` (e.g. to write it to a file), so it is an HTML object too.
    return HTML(page)
