"""Funnel Transformer of one block: its relative attention recorded through module hooks, with the relative
position and segment terms in the bias. (Models that pool between blocks are refused: test_capture_refusals.py.)"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from attnwidget import capture
from attnwidget.capturing import IncompleteScoresWarning
from conftest import eager_attentions, model_state, rebuilt, softmax_of_scores

TEXT, PAIR = "leaves fall in autumn", "the old trees stand bare"


@pytest.mark.parametrize("attention_type", ["relative_shift", "factorized"])
def test_funnel_relative_attention_is_exact_with_its_position_and_segment_terms(tiny_models, attention_type):
    model, tokenizer = tiny_models("funnel")  # two encoder layers, one decoder layer, all over the tokens
    model = rebuilt(model, attention_type=attention_type)
    before = model_state(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error", IncompleteScoresWarning)
        result = capture(model, tokenizer, TEXT, PAIR)
    assert model_state(model) == before

    reference = eager_attentions(model, dict(tokenizer(TEXT, PAIR, return_tensors="pt")))["self"][:, 0]
    attention = result.attention()
    assert attention.shape == (3, 4, len(result.tokens), len(result.tokens))
    np.testing.assert_allclose(attention, reference, atol=1e-6, rtol=0)
    for layer in range(3):
        np.testing.assert_allclose(softmax_of_scores(result, layer, "self"), attention[layer], atol=1e-4, rtol=0)

    # Without the bias the map would differ: the relative terms are part of what the model scores.
    query, key = result.query_key(0)
    scores = np.einsum("hqd,hkd->hqk", query, key)
    content_only = np.exp(scores - scores.max(-1, keepdims=True))
    content_only /= content_only.sum(-1, keepdims=True)
    assert np.abs(content_only - attention[0]).max() > 1e-2


def test_funnel_segment_term_is_in_the_bias(tiny_models):
    """With the content and position biases zeroed, what remains of the bias is the segment term: per query, one
    value for the keys of its own sentence and another for the other sentence's."""
    model, tokenizer = tiny_models("funnel")
    with torch.no_grad():
        for attention in (layer.attention for layer in model.funnel.encoder.blocks[0]):
            for parameter in (attention.r_w_bias, attention.r_r_bias, attention.r_kernel):
                parameter.zero_()
    result = capture(model, tokenizer, TEXT, PAIR)
    start, bias = result.segment_b_start, result.bias(0)
    own, other = bias[:, 2, 1:start], bias[:, 2, start:]  # query 2 is in the first sentence; key 0 is [CLS]
    np.testing.assert_allclose(own, own[:, :1].repeat(own.shape[1], axis=1), atol=1e-6)
    np.testing.assert_allclose(other, other[:, :1].repeat(other.shape[1], axis=1), atol=1e-6)
    assert np.abs(own[:, 0] - other[:, 0]).min() > 1e-3
