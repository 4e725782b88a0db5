"""attnwidget.bertviz: BertViz's parameters, each doing what BertViz documents, on the real MiniLM.

The installed `bertviz` package is the reference for names, order and defaults, and where cheap
the same call is made to it too, to prove the arguments are ones BertViz itself takes.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import bertviz
import bertviz.neuron_view
import ipywidgets.widgets.widget as ipywidgets_widget
import numpy as np
import pytest
import torch
from IPython.display import HTML
from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel

from attnwidget import AttentionWidget
from attnwidget.bertviz import head_view, model_view
from attnwidget.bertviz.neuron_view import show

SENTENCE_A = "The cat sat on the mat"
SENTENCE_B = "The dog snoozed on the rug"
LAYERS, HEADS = 6, 12  # MiniLM


@dataclass
class Pair:
    """A sentence pair through MiniLM, prepared as BertViz's README prepares it."""

    model: object
    tokenizer: object
    attention: tuple
    tokens: list[str]
    sentence_b_start: int


@pytest.fixture(scope="module")
def pair(minilm_path) -> Pair:
    model = AutoModel.from_pretrained(minilm_path, output_attentions=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    inputs = tokenizer(SENTENCE_A, SENTENCE_B, return_tensors="pt")
    with torch.no_grad():
        attention = model(**inputs).attentions
    token_type_ids = inputs["token_type_ids"][0].tolist()
    tokens = tokenizer.convert_ids_to_tokens(inputs["input_ids"][0])
    return Pair(model, tokenizer, attention, tokens, token_type_ids.index(1))


@pytest.fixture(autouse=True)
def close_new_widgets():
    """Close the widgets a test opened: ipywidgets keeps every open widget alive."""
    before = set(ipywidgets_widget._instances)
    yield
    for key in set(ipywidgets_widget._instances) - before:
        ipywidgets_widget._instances[key].close()


def stacked(attention) -> np.ndarray:
    """[layers, heads, n, n] of a model's per-layer (1, heads, n, n) tuple."""
    return torch.cat(attention).numpy()


# -- signatures -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ours, theirs",
    [(head_view, bertviz.head_view), (model_view, bertviz.model_view), (show, bertviz.neuron_view.show)],
    ids=["head_view", "model_view", "show"],
)
def test_every_bertviz_parameter_in_bertviz_order_with_its_default(ours, theirs):
    their_parameters = list(inspect.signature(theirs).parameters.values())
    our_parameters = list(inspect.signature(ours).parameters.values())
    # Positional calls written for BertViz bind to the same parameters here.
    assert [p.name for p in our_parameters[: len(their_parameters)]] == [p.name for p in their_parameters]
    assert [p.default for p in our_parameters[: len(their_parameters)]] == [p.default for p in their_parameters]
    # Ours beyond BertViz's can only be given by name, so no BertViz call can reach them by position.
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in our_parameters[len(their_parameters):])


@pytest.mark.parametrize("function", [head_view, model_view])
def test_both_views_take_the_documented_parameters(function):
    documented = {
        "attention", "tokens", "sentence_b_start", "prettify_tokens", "layer", "heads", "include_layers",
        "include_heads", "encoder_attention", "decoder_attention", "cross_attention", "encoder_tokens",
        "decoder_tokens", "display_mode", "html_action",
    }  # fmt: skip
    assert set(inspect.signature(function).parameters) == documented


@pytest.mark.parametrize("function", [head_view, model_view])
def test_unknown_keyword_is_named_with_a_suggestion_and_the_accepted_list(pair, function):
    with pytest.raises(TypeError) as error:
        function(pair.attention, pair.tokens, include_layer=[1])
    message = str(error.value)
    assert "'include_layer'" in message
    assert "did you mean 'include_layers'" in message
    assert "html_action" in message and "include_heads" in message


def test_show_rejects_an_unknown_keyword_before_running_the_model(pair):
    with pytest.raises(TypeError, match="'sentence_c'.*It accepts: model, model_type"):
        show(pair.model, "bert", pair.tokenizer, SENTENCE_A, sentence_c="x")


# -- attention, tokens, sentence_b_start ----------------------------------------------------------


@pytest.mark.parametrize("function, view", [(head_view, "head"), (model_view, "model")])
def test_attention_and_tokens_positionally_as_in_bertvizs_readme(pair, function, view):
    widget = function(pair.attention, pair.tokens, pair.sentence_b_start)

    assert isinstance(widget, AttentionWidget)
    assert widget.view == view
    np.testing.assert_allclose(widget.capture.attention(), stacked(pair.attention), atol=1e-6)
    side = widget.meta["sides"]["input"]
    assert len(side["tokens"]) == len(pair.tokens)
    assert side["segment_b_start"] == pair.sentence_b_start
    assert (widget.layer, widget.heads) == (0, list(range(HEADS)))
    widget.pair_filter = "AB"  # the pair filter exists only with sentence_b_start
    assert widget.pair_filter == "AB"


def test_without_sentence_b_start_there_is_no_pair(pair):
    widget = head_view(pair.attention, pair.tokens)
    assert widget.meta["sides"]["input"]["segment_b_start"] is None
    with pytest.raises(Exception, match="needs a sentence pair"):
        widget.pair_filter = "AB"


def test_sentence_b_start_out_of_range_is_a_clear_error(pair):
    with pytest.raises(ValueError, match="sentence_b_start=40 is outside"):
        head_view(pair.attention, pair.tokens, 40)


def test_attention_without_tokens_says_what_to_pass(pair):
    with pytest.raises(ValueError, match="tokens is missing.*convert_ids_to_tokens"):
        model_view(pair.attention)


def test_tokens_that_do_not_match_the_attention_are_named(pair):
    fewer = len(pair.tokens) - 1
    with pytest.raises(ValueError, match=f"attention layer 0: .* but tokens has {fewer} .*pass the tokens the attention"):
        head_view(pair.attention, pair.tokens[:-1])


# -- prettify_tokens ------------------------------------------------------------------------------


def test_prettify_tokens_strips_wordpiece_markers_by_default(pair):
    shown = head_view(pair.attention, pair.tokens).meta["sides"]["input"]["tokens"]
    assert "##oz" in pair.tokens
    assert "oz" in shown and not any(token.startswith("##") for token in shown)
    assert "[CLS]" in shown  # special tokens stay as they are


def test_prettify_tokens_false_shows_the_tokens_as_given(pair):
    shown = model_view(pair.attention, pair.tokens, prettify_tokens=False).meta["sides"]["input"]["tokens"]
    assert shown == pair.tokens


def test_prettify_tokens_false_still_makes_whitespace_visible(pair):
    tokens = list(pair.tokens)
    tokens[1] = "the\ncat"
    shown = head_view(pair.attention, tokens, prettify_tokens=False).meta["sides"]["input"]["tokens"]
    assert shown[1] == "the\u21b5cat"


def test_prettify_tokens_must_be_a_bool(pair):
    with pytest.raises(TypeError, match="prettify_tokens must be True or False"):
        head_view(pair.attention, pair.tokens, prettify_tokens="no")


# -- layer and heads: the initial selection ---------------------------------------------------------


@pytest.mark.parametrize("function", [head_view, model_view])
def test_layer_and_heads_are_the_initial_selection(pair, function):
    widget = function(pair.attention, pair.tokens, layer=2, heads=[5, 3])
    assert widget.layer == 2
    assert widget.heads == [3, 5]
    assert widget.head == 3  # the focused head is a visible one
    assert widget.meta["stacks"][0]["heads"] == HEADS  # nothing left out: heads only selects


def test_bertviz_head_view_takes_the_same_selection(pair):
    page = bertviz.head_view(pair.attention, pair.tokens, layer=2, heads=[5, 3], html_action="return")
    assert '"layer": 2' in page.data and '"heads": [5, 3]' in page.data


@pytest.mark.parametrize(
    "options, error, message",
    [
        ({"layer": 6}, ValueError, "layer: 6 is out of range; there are 6 layers"),
        ({"layer": -1}, ValueError, "negative"),
        ({"layer": "2"}, TypeError, "layer must be a 0-based integer"),
        ({"layer": True}, TypeError, "layer must be a 0-based integer"),
        ({"heads": [12]}, ValueError, "heads: 12 is out of range; there are 12 heads"),
        ({"heads": 3}, TypeError, "heads must be a list"),
        ({"heads": [1, 1]}, ValueError, "repeats"),
    ],
)
def test_bad_selection_is_a_clear_error(pair, options, error, message):
    with pytest.raises(error, match=message):
        head_view(pair.attention, pair.tokens, **options)


# -- include_layers and include_heads: what is shown at all -----------------------------------------


@pytest.mark.parametrize("function", [head_view, model_view])
def test_include_layers_shows_only_those_layers_in_model_order(pair, function):
    widget = function(pair.attention, pair.tokens, include_layers=[4, 1])
    assert widget.meta["stacks"][0]["layers"] == 2
    expected = stacked(pair.attention)[[1, 4]]
    np.testing.assert_allclose(widget.capture.attention(), expected, atol=1e-6)


def test_layer_is_a_model_layer_number_even_with_include_layers(pair):
    widget = head_view(pair.attention, pair.tokens, layer=4, include_layers=[1, 4])
    assert widget.layer == 1  # the widget's second layer is model layer 4
    np.testing.assert_allclose(widget.capture.layer_attention(widget.layer), stacked(pair.attention)[4], atol=1e-6)


def test_layer_outside_include_layers_is_refused_as_bertviz_does(pair):
    with pytest.raises(ValueError, match=r"layer: 2 is not shown; include_layers=\[1, 4\]"):
        head_view(pair.attention, pair.tokens, layer=2, include_layers=[1, 4])
    with pytest.raises(ValueError, match="not in include_layers"):
        bertviz.head_view(pair.attention, pair.tokens, layer=2, include_layers=[1, 4], html_action="return")


@pytest.mark.parametrize("function", [head_view, model_view])
def test_include_heads_shows_only_those_heads(pair, function):
    widget = function(pair.attention, pair.tokens, include_heads=[7, 0, 11])
    assert widget.meta["stacks"][0]["heads"] == 3
    np.testing.assert_allclose(widget.capture.attention(), stacked(pair.attention)[:, [0, 7, 11]], atol=1e-6)
    assert widget.heads == [0, 1, 2]


def test_heads_are_model_head_numbers_even_with_include_heads(pair):
    widget = model_view(pair.attention, pair.tokens, include_heads=[2, 7, 9], heads=[9, 2])
    assert widget.heads == [0, 2]
    with pytest.raises(ValueError, match=r"heads: 3 is not shown; include_heads=\[2, 7, 9\]"):
        model_view(pair.attention, pair.tokens, include_heads=[2, 7, 9], heads=[3])


def test_bertviz_model_view_takes_the_same_restriction(pair):
    page = bertviz.model_view(pair.attention, pair.tokens, include_layers=[1, 4], include_heads=[0, 7, 11],
                              html_action="return")  # fmt: skip
    assert '"include_layers": [1, 4]' in page.data


@pytest.mark.parametrize(
    "options, error, message",
    [
        ({"include_layers": [6]}, ValueError, r"include_layers=\[6\] names layers \[6\] that do not exist.*6 layers"),
        ({"include_heads": [0, 12]}, ValueError, r"names heads \[12\].*12 heads"),
        ({"include_layers": []}, ValueError, "include_layers is empty; pass the layers to show, or None"),
        ({"include_heads": [3, 3]}, ValueError, "repeats"),
        ({"include_layers": 2}, TypeError, "include_layers must be a list"),
        ({"include_heads": ["0"]}, TypeError, r"include_heads\[0\] must be a 0-based integer"),
    ],
)
def test_bad_include_lists_are_clear_errors(pair, options, error, message):
    with pytest.raises(error, match=message):
        model_view(pair.attention, pair.tokens, **options)


# -- encoder-decoder ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seq2seq(minilm_path):
    """Attention of a tiny random BART, from output_attentions=True as BertViz's README gets it."""
    from conftest import build_tiny

    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    model = build_tiny("bart")
    encoder = tokenizer("She sees the small elephant.", return_tensors="pt").input_ids
    decoder = tokenizer("Sie sieht den kleinen Elefanten.", return_tensors="pt").input_ids
    with torch.no_grad():
        outputs = model(input_ids=encoder, decoder_input_ids=decoder, output_attentions=True)
    return {
        "encoder_attention": outputs.encoder_attentions,
        "decoder_attention": outputs.decoder_attentions,
        "cross_attention": outputs.cross_attentions,
        "encoder_tokens": tokenizer.convert_ids_to_tokens(encoder[0]),
        "decoder_tokens": tokenizer.convert_ids_to_tokens(decoder[0]),
    }


@pytest.mark.parametrize("function", [head_view, model_view])
def test_encoder_decoder_attention_becomes_three_stacks(seq2seq, function):
    widget = function(**seq2seq)
    stacks = {entry["name"]: entry for entry in widget.meta["stacks"]}
    assert list(stacks) == ["encoder", "decoder", "cross"]
    assert (stacks["cross"]["query_side"], stacks["cross"]["key_side"]) == ("decoder", "input")
    assert len(widget.meta["sides"]["input"]["tokens"]) == len(seq2seq["encoder_tokens"])
    assert len(widget.meta["sides"]["decoder"]["tokens"]) == len(seq2seq["decoder_tokens"])
    np.testing.assert_allclose(widget.capture.attention("cross"), stacked(seq2seq["cross_attention"]), atol=1e-6)
    assert bertviz.model_view(**seq2seq, html_action="return").data  # the same call BertViz takes


def test_encoder_decoder_with_one_stack_and_include_layers(seq2seq):
    widget = head_view(
        cross_attention=seq2seq["cross_attention"],
        encoder_tokens=seq2seq["encoder_tokens"],
        decoder_tokens=seq2seq["decoder_tokens"],
        include_layers=[1],
    )
    assert [(entry["name"], entry["layers"]) for entry in widget.meta["stacks"]] == [("cross", 1)]
    np.testing.assert_allclose(widget.capture.attention("cross"), stacked(seq2seq["cross_attention"])[[1]], atol=1e-6)


def test_encoder_attention_without_encoder_tokens_is_a_clear_error(seq2seq):
    with pytest.raises(ValueError, match="needs encoder_tokens="):
        model_view(encoder_attention=seq2seq["encoder_attention"])


def test_attention_and_encoder_attention_together_are_refused(pair, seq2seq):
    with pytest.raises(ValueError, match="not both"):
        head_view(pair.attention, pair.tokens, encoder_attention=seq2seq["encoder_attention"])


def test_no_attention_at_all_says_what_to_pass():
    with pytest.raises(ValueError, match="no attention given"):
        head_view()


# -- display_mode ---------------------------------------------------------------------------------


@pytest.mark.parametrize("display_mode", ["dark", "light", "auto"])
@pytest.mark.parametrize("function", [head_view, model_view])
def test_display_mode_is_the_theme(pair, function, display_mode):
    assert function(pair.attention, pair.tokens, display_mode=display_mode).theme == display_mode


def test_default_display_modes_follow_bertviz(pair):
    assert model_view(pair.attention, pair.tokens).theme == "dark"  # BertViz's documented default
    assert head_view(pair.attention, pair.tokens).theme == "auto"  # BertViz's head view has no dark mode


def test_unknown_display_mode_lists_the_supported_ones(pair):
    with pytest.raises(ValueError, match=r"display_mode must be one of \['dark', 'light', 'auto'\], not 'night'"):
        model_view(pair.attention, pair.tokens, display_mode="night")


# -- html_action ----------------------------------------------------------------------------------


@pytest.mark.parametrize("function", [head_view, model_view])
def test_html_action_view_returns_the_widget_without_displaying_it(pair, function, monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *objects, **_: shown.extend(objects))
    widget = function(pair.attention, pair.tokens, html_action="view")
    assert isinstance(widget, AttentionWidget)
    assert shown == []  # the cell's value shows it; displaying it here too would show it twice


@pytest.mark.parametrize("function, view", [(head_view, "head"), (model_view, "model")])
def test_html_action_return_gives_self_contained_html_in_data(pair, function, view):
    open_before = len(ipywidgets_widget._instances)
    page = function(pair.attention, pair.tokens, pair.sentence_b_start, html_action="return")

    assert isinstance(page, HTML)  # BertViz code writes `page.data` to a file
    assert page.data.lstrip().lower().startswith("<!doctype html>")
    assert "##oz" not in page.data and '"oz"' in page.data  # the (prettified) tokens are in the page
    assert f'"view":"{view}"' in page.data
    assert "<script src=" not in page.data  # nothing from a CDN, unlike BertViz's require.js
    assert len(ipywidgets_widget._instances) == open_before  # the widget used for the page is closed


@pytest.mark.parametrize("function", [head_view, model_view])
def test_unknown_html_action_says_what_is_supported(pair, function):
    with pytest.raises(ValueError, match="html_action must be 'view' .* or 'return' .*not 'save'"):
        function(pair.attention, pair.tokens, html_action="save")


# -- neuron_view.show -----------------------------------------------------------------------------


def test_show_on_a_sentence_pair_as_in_bertvizs_readme(pair):
    widget = show(pair.model, "bert", pair.tokenizer, SENTENCE_A, SENTENCE_B, layer=2, head=0)

    assert isinstance(widget, AttentionWidget)
    assert (widget.view, widget.layer, widget.head, widget.theme) == ("neuron", 2, 0, "dark")
    side = widget.meta["sides"]["input"]
    assert side["tokens"][: side["segment_b_start"]][-1] == "[SEP]"
    assert len(side["tokens"]) == len(pair.tokens)
    query, key = widget.capture.query_key(2)  # what the neuron view draws
    assert query.shape[:2] == (HEADS, len(pair.tokens)) and key.shape == query.shape
    np.testing.assert_allclose(widget.capture.attention(), stacked(pair.attention), atol=1e-5)


def test_show_defaults_to_layer_0_head_0_and_one_sentence(pair):
    widget = show(pair.model, "bert", pair.tokenizer, SENTENCE_A)
    assert (widget.layer, widget.head) == (0, 0)
    assert widget.meta["sides"]["input"]["segment_b_start"] is None


@pytest.mark.parametrize("display_mode", ["light", "auto"])
def test_show_display_mode(pair, display_mode):
    widget = show(pair.model, "bert", pair.tokenizer, SENTENCE_A, display_mode=display_mode)
    assert widget.theme == display_mode


@pytest.mark.parametrize("arch", ["llama", "t5", "distilbert"])
def test_show_works_on_any_architecture_and_model_type_does_not_restrict_it(tiny_models, arch):
    model, tokenizer = tiny_models(arch)
    widget = show(model, "bert", tokenizer, SENTENCE_A, layer=1, head=3)
    assert (widget.view, widget.layer, widget.head) == ("neuron", 1, 3)
    query, key = widget.capture.query_key(1)
    assert query.shape == key.shape


def test_show_html_action_return(pair):
    page = show(pair.model, "gpt2", pair.tokenizer, SENTENCE_A, SENTENCE_B, html_action="return")
    assert isinstance(page, HTML) and page.data.lstrip().lower().startswith("<!doctype html>")
    assert '"view":"neuron"' in page.data
    # The page carries the queries and keys the neuron view draws, so it needs no kernel.
    assert '"query_key":{"available":true,"complete":true}' in page.data


@pytest.mark.parametrize(
    "options, error, message",
    [
        ({"layer": 6}, ValueError, "layer: 6 is out of range; there are 6 layers"),
        ({"head": 12}, ValueError, "head: 12 is out of range; there are 12 heads"),
        ({"head": 1.0}, TypeError, "head must be a 0-based integer"),
        ({"display_mode": "dim"}, ValueError, "display_mode must be one of"),
        ({"html_action": "save"}, ValueError, "html_action must be 'view'"),
    ],
)
def test_show_bad_options_are_clear_errors(pair, options, error, message):
    with pytest.raises(error, match=message):
        show(pair.model, "bert", pair.tokenizer, SENTENCE_A, **options)


def test_show_checks_its_options_before_running_the_model(pair):
    with pytest.raises(ValueError, match="html_action"):
        show(None, "bert", None, SENTENCE_A, html_action="save")
    with pytest.raises(TypeError, match="model_type must be a string"):
        show(pair.model, None, pair.tokenizer, SENTENCE_A)


def test_show_names_bertvizs_own_model_classes(minilm_path, pair):
    from bertviz.transformers_neuron_view import BertConfig as ForkConfig
    from bertviz.transformers_neuron_view import BertModel as ForkModel

    fork = ForkModel(ForkConfig.from_json_file(f"{minilm_path}/config.json"))
    with pytest.raises(TypeError, match="BertViz's own BertModel.*load the model and tokenizer with transformers"):
        show(fork, "bert", pair.tokenizer, SENTENCE_A)


def test_show_on_something_that_is_not_a_model(pair):
    with pytest.raises(TypeError, match="model must be a transformers model.*not Linear"):
        show(torch.nn.Linear(2, 2), "bert", pair.tokenizer, SENTENCE_A)


def test_show_passes_on_captures_error_for_a_model_it_cannot_read(pair):
    model = BertModel(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=64))  # fmt: skip
    with pytest.raises(ValueError, match="this tokenizer does not match the model"):
        show(model.eval(), "bert", pair.tokenizer, SENTENCE_A)


def test_bertvizs_last_output_idiom_is_answered_with_where_the_attention_is(tiny_models):
    """BertViz's README: `attention = model(inputs)[-1]`; in transformers 5 that is an empty cross_attentions."""
    model, tokenizer = tiny_models("bert")
    model.config.output_attentions = True
    inputs = tokenizer.encode("leaves fall in autumn", return_tensors="pt")
    outputs = model(inputs)
    tokens = tokenizer.convert_ids_to_tokens(inputs[0])
    with pytest.raises(ValueError, match=r"model\(inputs\)\[-1\]` gives an empty tuple.*Pass outputs\.attentions"):
        head_view(outputs[-1], tokens)
    assert head_view(outputs.attentions, tokens).capture.num_layers("self") == 2  # what the message says works
