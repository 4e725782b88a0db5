"""Drop-in replacements for BertViz: change `from bertviz import ...` to `from attnwidget.bertviz import ...`.

`head_view` and `model_view` take BertViz's parameters, in BertViz's positional order, and
return an `AttentionWidget` showing the head or model view (all views stay one tab away).
`attnwidget.bertviz.neuron_view.show` does the same for the neuron view, on any ordinary
transformers model.

Differences from BertViz, all deliberate:

- `html_action="view"` returns the widget instead of displaying it and returning None, so a cell
  ending in the call shows it once. Elsewhere in a cell, pass the result to `display()`.
- `html_action="return"` gives an `IPython.display.HTML` whose `.data` is a self-contained page
  (no CDN), as `AttentionWidget.to_html()` writes it.
- Both functions take all of `layer`, `heads`, `include_layers`, `include_heads` and `display_mode`
  (BertViz splits them between the two); parameters BertViz lacks are keyword-only.
- `layer`, `heads`, `include_layers` and `include_heads` use the model's layer and head numbers.
  With `include_layers` the widget's layer list holds only those layers, renumbered from 0 in
  ascending order (widget layer i is `sorted(include_layers)[i]`); heads likewise.
- `prettify_tokens=True` also removes WordPiece's `##` (BertViz keeps it); `False` shows the tokens
  exactly as given, with whitespace made visible.
- `display_mode` also accepts "auto" (follow the notebook's theme), the head view's default:
  BertViz's head view has no dark mode and draws on the page's own background.
- Anything BertViz would accept silently but cannot mean (an index out of range, an empty
  `include_layers`) is a ValueError or TypeError that says what to pass instead.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..capturing import Capture, capture_from_attention
from ..capturing.tokens import visible_text
from ..widget import AttentionWidget
from ._output import check_display_mode, check_html_action, deliver
from ._selection import restricted, shown
from ._strict import strict_parameters

__all__ = ["head_view", "model_view"]


@strict_parameters
def head_view(  # BertViz's parameters in BertViz's order (tests/test_bertviz_compat.py checks)
    attention=None, tokens=None, sentence_b_start=None, prettify_tokens=True, layer=None, heads=None,
    encoder_attention=None, decoder_attention=None, cross_attention=None, encoder_tokens=None,
    decoder_tokens=None, include_layers=None, html_action="view", *, include_heads=None, display_mode="auto",
):
    """BertViz's head view: the attention of the selected heads of one layer, token to token.

    `attention` is `outputs.attentions` of `model(..., output_attentions=True)` with `tokens` (and
    `sentence_b_start` for a sentence pair); for an encoder-decoder pass `encoder_attention`,
    `decoder_attention`, `cross_attention` with `encoder_tokens` and `decoder_tokens`.
    `layer` and `heads` are the initial selection; `include_layers` and `include_heads` leave the
    others out. Returns the widget, or with `html_action="return"` an IPython HTML page.
    """
    return _attention_view("head", **locals())  # locals() is exactly the parameters here


@strict_parameters
def model_view(  # BertViz's parameters in BertViz's order (tests/test_bertviz_compat.py checks)
    attention=None, tokens=None, sentence_b_start=None, prettify_tokens=True, display_mode="dark",
    encoder_attention=None, decoder_attention=None, cross_attention=None, encoder_tokens=None,
    decoder_tokens=None, include_layers=None, include_heads=None, html_action="view", *, layer=None, heads=None,
):
    """BertViz's model view: every layer and head at a glance. Parameters as in `head_view`."""
    return _attention_view("model", **locals())  # locals() is exactly the parameters here


def _attention_view(
    view, *, attention, tokens, sentence_b_start, prettify_tokens, layer, heads,
    include_layers, include_heads, display_mode, html_action, **encoder_decoder,
) -> Any:  # fmt: skip
    """`encoder_decoder`: the encoder/decoder/cross attention and tokens, as capture_from_attention names them."""
    theme = check_display_mode(display_mode)
    html_action = check_html_action(html_action)
    if not isinstance(prettify_tokens, bool):
        raise TypeError(f"prettify_tokens must be True or False, not {type(prettify_tokens).__name__}")
    capture = capture_from_attention(attention, tokens, sentence_b_start=sentence_b_start, **encoder_decoder)
    if not prettify_tokens:
        capture = _with_tokens_as_given(capture)
    scope = shown(capture, include_layers, include_heads)
    selected_heads = scope.head_positions(heads)
    widget = AttentionWidget.from_capture(
        restricted(capture, scope),
        view=view,
        theme=theme,
        layer=scope.layer_position(layer),
        heads=selected_heads,
        head=selected_heads[0] if selected_heads else 0,  # focus a selected head, not hidden head 0
        derived=False,  # BertViz's views show the attention as given: no rollout or word-level stacks
    )
    return deliver(widget, html_action)


def _with_tokens_as_given(capture: Capture) -> Capture:
    """The same capture labelled with the raw tokens, only whitespace and controls made visible."""
    sides = [replace(side, tokens=[visible_text(token) for token in side.raw_tokens]) for side in capture.sides.values()]
    return Capture(sides, [capture.stack(name) for name in capture.stacks])
