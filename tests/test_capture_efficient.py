"""Reformer and Nyströmformer, where they compute exact softmax attention: recorded through module hooks, equal to
eager output_attentions (Reformer's chunked local maps put in token order) and explained by q, k and the bias."""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from attnwidget import capture
from attnwidget.capturing import IncompleteScoresWarning
from conftest import eager_attentions, softmax_of_scores
from test_architecture_coverage import EAGER_LAYOUTS
from test_capture_model_state import model_state

TEXT = "leaves fall in autumn and the old trees stand bare"  # 12 tokens: Reformer pads them to 16


def _eager_in_token_order(model, tokenizer) -> list[np.ndarray]:
    inputs = tokenizer(TEXT, return_tensors="pt")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Input ids are automatically padded"
        out = model(**inputs, output_attentions=True)
    maps = EAGER_LAYOUTS["reformer"](model, "self", list(out.attentions), {"input": inputs["input_ids"].shape[1]})
    return [weights[0].numpy() for weights in maps]


def _captured(model, tokenizer, text=TEXT):
    with warnings.catch_warnings():
        warnings.simplefilter("error", IncompleteScoresWarning)  # q, k, scale and bias explain it all
        warnings.filterwarnings("ignore", message="Input ids are automatically padded")
        return capture(model, tokenizer, text)


def _assert_exact(result, reference):
    attention = result.attention()
    assert attention.shape[0] == len(reference)
    for layer, expected in enumerate(reference):
        np.testing.assert_allclose(attention[layer], expected, atol=1e-6, rtol=0)
        np.testing.assert_allclose(softmax_of_scores(result, layer, "self"), attention[layer], atol=1e-4, rtol=0)


def test_reformer_local_chunks_and_lsh_over_one_chunk_are_exact(tiny_models):
    model, tokenizer = tiny_models("reformer")  # a causal local layer in chunks of 4, then an LSH layer
    before = model_state(model)
    result = _captured(model, tokenizer)
    assert model_state(model) == before
    assert result.attention().shape[2:] == (12, 12)  # the model's 4 padding positions are cut
    _assert_exact(result, _eager_in_token_order(model, tokenizer))

    local, lsh = result.attention()
    # Query 9 is in chunk 2 (tokens 8-11): it sees chunk 1 and its own chunk up to itself, nothing before.
    assert local[:, 9, :4].max() == 0 and local[:, 9, 4:10].min() > 0
    assert np.isneginf(result.bias(0)[:, 9, :4]).all()
    # Over one chunk LSH attends everywhere before, but a token to itself only when nothing else is visible.
    assert np.all(lsh[:, 0, 0] == 1)
    later = np.arange(1, 12)
    assert lsh[:, later, later].max() < 1e-6
    assert lsh[:, 11, :11].min() > 0


def test_reformer_key_seen_from_two_windows_counts_twice(tiny_models):
    """Two chunks, each window the chunk before, itself and the one after (wrapping around): a token of the other
    chunk is in the window twice and gets twice the weight, log(2) in the bias."""
    from transformers import ReformerForMaskedLM

    config = tiny_models("reformer")[0].config
    config.update({"is_decoder": False, "local_attn_chunk_length": 8, "local_num_chunks_after": 1})
    torch.manual_seed(0)
    model, tokenizer = ReformerForMaskedLM(config).eval(), tiny_models("reformer")[1]
    result = _captured(model, tokenizer)
    _assert_exact(result, _eager_in_token_order(model, tokenizer))
    bias = result.bias(0)
    np.testing.assert_allclose(bias[:, 0, 8:], math.log(2), rtol=1e-6)  # query 0's window holds chunk 1 twice
    np.testing.assert_allclose(bias[:, 0, :8], 0)
    np.testing.assert_allclose(bias[:, 8, :8], math.log(2), rtol=1e-6)


def test_nystromformer_with_a_landmark_per_position_is_exact(tiny_models):
    model, tokenizer = tiny_models("nystromformer")
    before = model_state(model)
    result = _captured(model, tokenizer)
    assert model_state(model) == before
    reference = eager_attentions(model, dict(tokenizer(TEXT, return_tensors="pt")))["self"][:, 0]
    _assert_exact(result, list(reference))
    # Queries and keys each carry the module's 1/head_dim**0.25, so the scale is 1.
    assert result.layer_scale(0, "self") == 1.0
