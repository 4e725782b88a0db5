"""Attention variants beyond softmax(q @ k.T * scale + bias): each recorded exactly, or refused, never shown wrong.

The two invariants of `test_capture_architectures.py` hold for Gemma 2, Gemma 4 and GPT-OSS there (they are
in `DECODER_ONLY`); this file checks what is particular to each variant.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from attnwidget import AttentionWidget, capture, wire
from attnwidget.capturing import IncompleteScoresWarning, LayerRecord
from conftest import eager_attentions, eager_copy, give_llama_layer_1_an_unrecorded_share, softmax_of_scores

TEXT = "leaves fall in autumn and the old trees stand bare"


def largest_reconstruction_error(result, layer: int) -> float:
    return float(np.abs(softmax_of_scores(result, layer, "self") - result.attention()[layer]).max())


def test_gemma2_soft_cap_is_recorded_and_gives_back_the_attention_bit_for_bit(tiny_models):
    model, tokenizer = tiny_models("gemma2", attn_implementation=None)  # attn_logit_softcapping=0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error", IncompleteScoresWarning)
        result = capture(model, tokenizer, TEXT)

    layers = result.stack().layers
    assert [result.softcap(layer) for layer in range(len(layers))] == [0.5, 0.5]
    # Derived exactly, so not even stored: the record's cap reproduces the model's own float32 ops.
    assert all(layer.stored_attention is None for layer in layers)
    reference = eager_attentions(model, dict(tokenizer(TEXT, return_tensors="pt")))["self"][:, 0]
    np.testing.assert_array_equal(result.attention(), reference)
    # The cap is no detail: without it the same queries and keys give other attention.
    uncapped = LayerRecord(query=layers[0].query, key=layers[0].key, scale=layers[0].scale, bias=layers[0].bias)
    assert np.abs(uncapped.derived_attention() - reference[0]).max() > 0.05


def test_gemma4_records_each_layer_s_own_head_dim(tiny_models):
    from attnwidget.capturing.budget import estimated_bytes

    model, tokenizer = tiny_models("gemma4_text", attn_implementation=None)  # head_dim 8, then 16
    with pytest.raises(RuntimeError, match="per-layer attribute"):
        model.config.head_dim  # noqa: B018 - what the memory estimate used to read, and crashed on
    result = capture(model, tokenizer, TEXT)

    layers = result.stack().layers
    assert [layer.query.shape[-1] for layer in layers] == [8, 16]
    assert [layer.key.shape[-1] for layer in layers] == [8, 16]
    # The estimate sizes each layer by its own head_dim, as the recording holds it.
    n = len(result.tokens)
    held = sum(layer.query.nbytes + layer.key.nbytes for layer in layers)
    assert estimated_bytes(model.config, n, None, attention_itemsize=0) == held + n * n * 4


def test_diffllama_is_refused_with_what_to_do_instead_and_left_as_it_was(tiny_models):
    model, tokenizer = tiny_models("diffllama", attn_implementation=None)
    with pytest.raises(ValueError, match="twice in one layer.*differential.*AttentionWidget.from_attention"):
        capture(model, tokenizer, TEXT)
    assert model.config._attn_implementation == "sdpa"
    assert all(not module._forward_pre_hooks and not module._forward_hooks for module in model.modules())

    # The advice works: eager output_attentions, one map per head and layer, into from_attention.
    encoding = tokenizer(TEXT, return_tensors="pt")
    with torch.no_grad():
        attentions = eager_copy(model)(**encoding, output_attentions=True).attentions
    widget = AttentionWidget.from_attention(attentions, tokenizer.convert_ids_to_tokens(encoding["input_ids"][0]))
    assert widget.capture.num_layers() == model.config.num_hidden_layers


def test_a_module_run_once_per_layer_is_one_layer_per_run(tiny_models):
    """ALBERT runs one shared attention module for each of its layers: each run is a layer, not a repeat."""
    model, tokenizer = tiny_models("albert")  # 3 layers, one shared layer group
    assert len([module for module in model.modules() if type(module).__name__ == "AlbertAttention"]) == 1
    result = capture(model, tokenizer, TEXT)
    assert result.num_layers() == 3
    reference = eager_attentions(model, dict(tokenizer(TEXT, return_tensors="pt")))["self"][:, 0]
    np.testing.assert_allclose(result.attention(), reference, atol=1e-6, rtol=0)


def test_gpt_oss_sinks_are_recorded_and_give_back_the_attention_bit_for_bit(tiny_models):
    model, tokenizer = tiny_models("gpt_oss", attn_implementation=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error", IncompleteScoresWarning)
        result = capture(model, tokenizer, TEXT)

    layers = result.stack().layers
    for index, layer in enumerate(model.model.layers):
        np.testing.assert_array_equal(result.sinks(index), layer.self_attn.sinks.detach().numpy())
    assert all(layer.stored_attention is None for layer in layers)
    reference = eager_attentions(model, dict(tokenizer(TEXT, return_tensors="pt")))["self"][:, 0]
    np.testing.assert_array_equal(result.attention(), reference)
    # The sink takes its share of every row: the weights of the real keys sum to less than 1.
    assert reference.sum(axis=-1).min() < 0.9
    without = LayerRecord(query=layers[0].query, key=layers[0].key, scale=layers[0].scale, bias=layers[0].bias)
    assert np.abs(without.derived_attention() - reference[0]).max() > 0.05
    # The page gets the sink as one more key column: what each query gives it, in every layer.
    meta = wire.build_meta(result, chunks_complete=True)
    assert meta["stacks"][0]["has_sinks"] == [True] * len(layers)
    for index in range(len(layers)):
        for head in range(result.num_heads("self")):
            chunk, shape = wire.head_chunk(result, "self", index, head)
            _, sink_weights = wire.split_head_chunk(chunk, shape, has_sinks=True)
            np.testing.assert_allclose(sink_weights, 1 - reference[index, head].sum(axis=-1), atol=1 / 510 + 1e-6)


def test_every_layer_is_checked_against_the_promised_tolerance(tiny_models, monkeypatch):
    """An architecture whose second layer gives a share of 5e-4 of each row to no token, which its queries and
    keys do not explain: a check of the first layer alone, or at 1e-3, would let it pass."""
    model, tokenizer = tiny_models("llama", attn_implementation=None)
    give_llama_layer_1_an_unrecorded_share(monkeypatch)
    with pytest.warns(IncompleteScoresWarning, match=r"LlamaAttention \(layer 1 of 'self'\).* by up to 0.0005"):
        result = capture(model, tokenizer, TEXT)
    assert largest_reconstruction_error(result, 0) < 1e-6
    assert 1e-4 < largest_reconstruction_error(result, 1) < 1e-3
    assert result.stack().layers[1].stored_attention is not None, "the model's own numbers are kept"
