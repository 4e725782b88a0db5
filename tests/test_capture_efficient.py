"""Reformer and Nyströmformer, where they compute exact softmax attention: recorded through module hooks, equal to
eager output_attentions (Reformer's chunked local maps put in token order; its hashed attention checked against
the layer's own output) and explained by q, k and the bias."""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from attnwidget import capture
from attnwidget.capturing import IncompleteScoresWarning
from conftest import eager_attentions, model_state, rebuilt, reformer_local_as_dense, softmax_of_scores

TEXT = "leaves fall in autumn and the old trees stand bare"  # 12 tokens: Reformer pads them to 16


def _eager_in_token_order(model, tokenizer) -> list[np.ndarray]:
    inputs = tokenizer(TEXT, return_tensors="pt")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Input ids are automatically padded"
        out = model(**inputs, output_attentions=True)
    maps = reformer_local_as_dense(list(out.attentions), model.config, inputs["input_ids"].shape[1])
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

    model, tokenizer = tiny_models("reformer")
    changes = {"is_decoder": False, "local_attn_chunk_length": 8, "local_num_chunks_after": 1}
    model = rebuilt(model, ReformerForMaskedLM, **changes)
    result = _captured(model, tokenizer)
    _assert_exact(result, _eager_in_token_order(model, tokenizer))
    bias = result.bias(0)
    np.testing.assert_allclose(bias[:, 0, 8:], math.log(2), rtol=1e-6)  # query 0's window holds chunk 1 twice
    np.testing.assert_allclose(bias[:, 0, :8], 0)
    np.testing.assert_allclose(bias[:, 8, :8], math.log(2), rtol=1e-6)


def test_reformer_lsh_over_several_chunks_is_exact_for_the_buckets_of_its_pass(tiny_models):
    """Two hashing rounds, each sorting the 12 tokens by bucket into chunks of 4 that also see the chunk before:
    the captured map, times the layer's values, gives back what the layer output in that very pass."""
    model, tokenizer = tiny_models("reformer")
    model = rebuilt(model, lsh_attn_chunk_length=4, num_hashes=2)
    lsh = model.reformer.encoder.layers[1].attention.self_attention
    seen = []
    hook = lsh.register_forward_hook(lambda module, args, kwargs, output: seen.append((kwargs, output)),
                                     with_kwargs=True)  # fmt: skip
    result = _captured(model, tokenizer)
    hook.remove()
    (given, output), = seen
    attention = result.attention()[1]  # [heads, 12, 12]
    assert output.buckets.shape[2] == 2  # it did hash, twice
    with torch.inference_mode():  # the pass's tensors are inference tensors
        values = lsh._split_hidden_size_dim(lsh.value(given["hidden_states"]), 4, 8)[0]  # [heads, 12, head_dim]
    layer_output = output.hidden_states[0].unflatten(-1, (4, 8)).transpose(0, 1)
    mixed = attention @ values.numpy()
    np.testing.assert_allclose(mixed[:, 1:], layer_output[:, 1:].numpy(), atol=1e-5, rtol=0)
    # The first token sees only itself, whose score the model replaces by -1e5: the map gives it weight 1. The
    # model mixes its rounds' outputs by exp(score) at that magnitude, where float32 keeps 3 decimals: its output
    # is its own value scaled by a number near 1 rather than 1.
    assert np.all(attention[:, 0, 0] == 1)
    np.testing.assert_allclose(layer_output[:, 0].numpy(), mixed[:, 0], rtol=1e-2)
    np.testing.assert_allclose(softmax_of_scores(result, 1, "self"), attention, atol=1e-4, rtol=0)
    # Causal, and a token sees only the tokens its buckets put near it: some earlier tokens are out of view.
    assert np.all(np.triu(attention, 1) == 0)
    assert (np.tril(attention, -1) == 0).sum() > np.tril(np.ones((4, 12, 12)), -1).sum() // 4


def test_nystromformer_with_a_landmark_per_position_is_exact(tiny_models):
    model, tokenizer = tiny_models("nystromformer")
    before = model_state(model)
    result = _captured(model, tokenizer)
    assert model_state(model) == before
    reference = eager_attentions(model, dict(tokenizer(TEXT, return_tensors="pt")))["self"][:, 0]
    _assert_exact(result, list(reference))
    # Queries and keys each carry the module's 1/head_dim**0.25, so the scale is 1.
    assert result.layer_scale(0, "self") == 1.0
