"""Drop-in for `bertviz.neuron_view.show`, on any ordinary transformers model.

BertViz's neuron view needs its own copies of BERT, GPT-2 and RoBERTa
(`bertviz.transformers_neuron_view`) to reach queries and keys. `attnwidget.capture` records
them from the model as loaded, so `show` takes the model and tokenizer from `transformers`
(`AutoModel`, `AutoTokenizer`, any architecture `attnwidget.capture` supports).
"""

from __future__ import annotations

from ..widget import AttentionWidget
from ._output import check_display_mode, check_html_action, deliver
from ._selection import Shown
from ._strict import strict_parameters

__all__ = ["show"]


@strict_parameters
def show(
    model,
    model_type,
    tokenizer,
    sentence_a,
    sentence_b=None,
    display_mode="dark",
    layer=None,
    head=None,
    html_action="view",
):
    """BertViz's neuron view: how one head's queries and keys make its attention.

    `model_type` ("bert", "gpt2", ...) is accepted for BertViz's sake; any model works, whatever
    its type. `layer` and `head` are the initial selection (default 0). Returns the widget, or with
    `html_action="return"` an IPython HTML page. A model that cannot be captured gets
    `attnwidget.capture`'s error.
    """
    if not isinstance(model_type, str):
        raise TypeError(f"model_type must be a string such as 'bert' or 'gpt2', not {type(model_type).__name__}")
    theme = check_display_mode(display_mode)
    html_action = check_html_action(html_action)
    _check_from_transformers(model, tokenizer)
    from ..capturing import capture  # loads torch, which a model implies anyway

    captured = capture(model, tokenizer, sentence_a, sentence_b)
    every = Shown(layers=None, heads=None, layer_count=captured.num_layers(), head_count=captured.num_heads())
    widget = AttentionWidget.from_capture(
        captured, view="neuron", theme=theme, layer=every.layer_position(layer), head=every.head_position(head),
        derived=False,  # as BertViz: the recorded attention only
    )
    return deliver(widget, html_action)



def _check_from_transformers(model: object, tokenizer: object) -> None:
    # The one import a ported BertViz notebook most likely keeps is BertViz's own BertModel and
    # BertTokenizer, which predate today's transformers API and would fail deep inside a capture.
    for name, value in (("model", model), ("tokenizer", tokenizer)):
        if type(value).__module__.startswith("bertviz."):
            raise TypeError(
                f"{name} is BertViz's own {type(value).__name__} (from bertviz.transformers_neuron_view); "
                "attnwidget needs none: load the model and tokenizer with transformers instead, e.g. "
                "`from transformers import AutoModel, AutoTokenizer`"
            )
    if not hasattr(model, "config"):
        raise TypeError(
            f"model must be a transformers model (e.g. AutoModel.from_pretrained(...)), not {type(model).__name__}"
        )
