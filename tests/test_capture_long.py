"""Long inputs: a layer too large for eager attention at once runs in chunks of query rows, holds only queries,
keys and bias, and gives the same attention and model output; one head comes out alone; long captures show a bar.

A small `max_memory_bytes` puts tiny models on the chunked path (a layer goes there when its weights would pass
1/16 of the budget), so these tests stay fast; benchmarks/long_capture_benchmark.py measures the real case.
"""

from __future__ import annotations

import importlib
import warnings

import numpy as np
import pytest
import torch

from attnwidget import capture
from attnwidget.capturing import IncompleteScoresWarning, progress
from attnwidget.capturing.budget import DEFAULT_MAX_MEMORY_BYTES, EAGER_SHARE, check_estimate
from conftest import eager_attentions, give_llama_layer_1_an_unrecorded_share

TEXT = "leaves fall in autumn and the old trees stand bare " * 5  # 52 tokens


def chunking_budget(model, tokenizer, text, chunks: int = 4) -> int:
    """A budget under which the largest attention call of `text` runs in about `chunks` chunks."""
    n = len(tokenizer(text)["input_ids"])
    return EAGER_SHARE * model.config.num_attention_heads * n * n * 4 // chunks


def query_rows_per_call(monkeypatch, model) -> list[int]:
    """The query rows of every call of the architecture's own eager function, as they happen."""
    family = importlib.import_module(type(model).__module__)
    own = family.eager_attention_forward
    rows: list[int] = []

    def counted(module, query, *args, **kwargs):
        rows.append(query.shape[-2])
        return own(module, query, *args, **kwargs)

    monkeypatch.setattr(family, "eager_attention_forward", counted)
    return rows


def output_of(model, run):
    """What the model returned (logits or hidden states) while `run()` captured it."""
    outputs = []
    handle = model.register_forward_hook(lambda module, args, output: outputs.append(output[0].clone()))
    try:
        result = run()
    finally:
        handle.remove()
    return result, outputs[-1]


# Rotary GQA, a soft-cap, attention sinks, and T5's per-head position bias in three stacks.
@pytest.mark.parametrize("arch", ["llama", "gemma2", "gpt_oss", "t5"])
def test_chunked_layers_give_the_attention_and_output_of_whole_ones(arch, tiny_models, monkeypatch):
    model, tokenizer = tiny_models(arch, attn_implementation=None)
    options = {"decoder_text": "autumn leaves"} if arch == "t5" else {}
    whole, whole_output = output_of(model, lambda: capture(model, tokenizer, TEXT, **options))

    rows = query_rows_per_call(monkeypatch, model)
    budget = chunking_budget(model, tokenizer, TEXT)
    with warnings.catch_warnings():
        warnings.simplefilter("error", IncompleteScoresWarning)
        chunked, chunked_output = output_of(
            model, lambda: capture(model, tokenizer, TEXT, max_memory_bytes=budget, **options)
        )

    n = len(chunked.tokens)
    assert rows and max(rows) < n, "no call may compute every query's weights at once"
    for stack in whole.stacks:
        stored = [[layer.stored_attention is not None for layer in result.stack(stack).layers] for result in (whole, chunked)]
        assert stored[0] == stored[1], "only what a whole layer stores (T5's 5-token decoder) is stored"
        np.testing.assert_allclose(chunked.attention(stack), whole.attention(stack), rtol=0, atol=1e-6)
    # Layers whose weights are derived get their output from torch's fused attention, which sums in another order.
    torch.testing.assert_close(chunked_output, whole_output, rtol=0, atol=1e-5)
    reference = eager_attentions(model, dict(tokenizer(TEXT, return_tensors="pt")))["self"] if arch != "t5" else None
    if reference is not None:
        np.testing.assert_allclose(chunked.attention(), reference[:, 0], rtol=0, atol=1e-6)


def test_a_padded_row_stores_its_chunks_where_asked_exactly_as_a_whole_layer_would(tiny_models):
    model, tokenizer = tiny_models("llama", attn_implementation=None)
    tokenizer.pad_token = tokenizer.pad_token or "[PAD]"
    texts = ["autumn leaves", TEXT]
    budget = chunking_budget(model, tokenizer, TEXT)
    for row in (0, 1):  # the short row is mostly padding, in its queries and its keys
        whole = capture(model, tokenizer, texts, row=row, attention_dtype="float16")
        chunked = capture(model, tokenizer, texts, row=row, attention_dtype="float16", max_memory_bytes=budget)
        assert all(layer.stored_attention is not None for layer in chunked.stack().layers), "float16 is stored"
        np.testing.assert_array_equal(chunked.attention(), whole.attention())
        derived = capture(model, tokenizer, texts, row=row, max_memory_bytes=budget)
        np.testing.assert_allclose(derived.attention(), whole.attention(), rtol=0, atol=1e-3)  # float16 rounding


def test_a_chunked_layer_its_queries_and_keys_do_not_explain_is_stored_with_a_warning(tiny_models, monkeypatch):
    model, tokenizer = tiny_models("llama", attn_implementation=None)
    give_llama_layer_1_an_unrecorded_share(monkeypatch)
    budget = chunking_budget(model, tokenizer, TEXT)
    with pytest.warns(IncompleteScoresWarning, match=r"LlamaAttention \(layer 1 of 'self'\).* by up to 0.0005"):
        chunked = capture(model, tokenizer, TEXT, max_memory_bytes=budget)
    with pytest.warns(IncompleteScoresWarning):
        whole = capture(model, tokenizer, TEXT)
    layers = chunked.stack().layers
    assert layers[0].stored_attention is None and layers[1].stored_attention is not None
    np.testing.assert_allclose(chunked.attention(), whole.attention(), rtol=0, atol=1e-6)


def test_one_head_comes_out_alone_and_equals_its_layer_s_slice(tiny_models, monkeypatch):
    model, tokenizer = tiny_models("llama", attn_implementation=None)
    derived = capture(model, tokenizer, TEXT)
    stored = capture(model, tokenizer, TEXT, attention_dtype="float16")
    for result in (derived, stored):
        for layer in range(result.num_layers()):
            heads = result.layer_attention(layer)
            for head in range(result.num_heads()):
                np.testing.assert_array_equal(result.head_attention(layer, head), heads[head])
    with pytest.raises(IndexError, match="head 4 is out of range; layer 1 has 4 heads"):
        derived.head_attention(1, 4)
    # Rows derived a few at a time (here 2, as 1024 at 4096 tokens) are the rows derived at once, to float32's last
    # bits (other matrix shapes run other kernels).
    whole = derived.layer_attention(1)[3]
    monkeypatch.setattr("attnwidget.capturing.result.DERIVE_CHUNK_BYTES", 2 * 4 * len(derived.tokens))
    np.testing.assert_allclose(derived.head_attention(1, 3), whole, rtol=0, atol=1e-6)


def test_the_default_budget_lets_a_32_by_32_model_capture_8192_tokens_by_estimate():
    from transformers import LlamaConfig

    config = LlamaConfig(
        num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8, hidden_size=256, intermediate_size=512
    )
    for n in (4096, 8192):  # a mask counted once per head would be 2 and 8 GiB
        check_estimate(config, n, None, attention_itemsize=0, budget=DEFAULT_MAX_MEMORY_BYTES)


def test_a_progress_bar_shows_for_long_captures_only(tiny_models, monkeypatch, capsys):
    model, tokenizer = tiny_models("llama", attn_implementation=None)
    short, long = "autumn leaves", TEXT
    # 2 layers x 4 heads: 200 scores for the short text, 21,632 for the long one.
    monkeypatch.setattr(progress, "PROGRESS_MIN_SCORES", 10_000)

    capture(model, tokenizer, short)
    assert "capturing attention" not in capsys.readouterr().err
    capture(model, tokenizer, long)
    bar = capsys.readouterr().err
    assert "capturing attention: 100%" in bar and "2/2 [" in bar, "one bar, over both layers"
    capture(model, tokenizer, long, progress=False)
    assert "capturing attention" not in capsys.readouterr().err


@pytest.mark.parametrize("arch, fused", [("llama", True), ("gemma2", False)])
def test_a_derived_layer_runs_eager_on_its_sample_only_and_fused_attention_for_the_rest(arch, fused, tiny_models, monkeypatch):
    model, tokenizer = tiny_models(arch, attn_implementation=None)
    rows = query_rows_per_call(monkeypatch, model)
    capture(model, tokenizer, TEXT, max_memory_bytes=chunking_budget(model, tokenizer, TEXT))
    layers = model.config.num_hidden_layers
    if fused:  # one eager call per layer, on the sampled rows; the whole layer's output came from the fused kernel
        assert len(rows) == layers, rows
    else:  # Gemma 2 soft-caps its scores, which the fused kernel cannot: every chunk runs eager
        assert len(rows) > 2 * layers, rows
