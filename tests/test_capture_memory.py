"""A float32 capture keeps queries and keys and derives the attention from them; other captures store it."""

from __future__ import annotations

import numpy as np
import torch

from attnwidget import capture
from conftest import eager_attentions

TEXT = "leaves fall in autumn and the old trees stand bare " * 8  # 82 tokens > 2 x head_dim 32: q + k < attention


def test_float32_minilm_holds_queries_and_keys_and_derives_the_model_s_own_attention(minilm):
    model, tokenizer = minilm
    result = capture(model, tokenizer, TEXT)
    layers = result.stack().layers
    assert all(layer.stored_attention is None for layer in layers), "no layer should hold an attention array"

    reference = eager_attentions(model, dict(tokenizer(TEXT, return_tensors="pt")))["self"][:, 0]
    np.testing.assert_array_equal(result.attention(), reference)  # bit for bit, not merely close
    assert layers[0].attention is not layers[0].attention, "derived afresh on each read, never kept"

    held = sum(layer.query.nbytes + layer.key.nbytes for layer in layers)
    assert held < reference.nbytes, "queries and keys must weigh less than the attention they replace"


def test_bfloat16_model_stores_its_own_rounded_attention(minilm_path, minilm_tokenizer):
    from transformers import AutoModel

    model = AutoModel.from_pretrained(minilm_path, dtype=torch.bfloat16).eval()
    result = capture(model, minilm_tokenizer, TEXT)
    assert all(layer.stored_attention is not None for layer in result.stack().layers)
    reference = eager_attentions(model, dict(minilm_tokenizer(TEXT, return_tensors="pt")))["self"][:, 0]
    np.testing.assert_array_equal(result.attention(), reference)


def test_float16_attention_is_stored_as_asked(minilm):
    model, tokenizer = minilm
    result = capture(model, tokenizer, TEXT, attention_dtype="float16")
    assert all(layer.stored_attention is not None for layer in result.stack().layers)
    assert result.layer_attention(0).dtype == np.float16


def test_the_estimate_sizes_layers_as_the_recording_holds_them(minilm):
    from attnwidget.capturing.budget import estimated_bytes

    model, tokenizer = minilm
    result = capture(model, tokenizer, TEXT)
    n = len(result.tokens)
    held = sum(layer.query.nbytes + layer.key.nbytes for layer in result.stack().layers)
    bias = n * n * 4  # the estimate allows one mask per stack, shared by its heads; MiniLM without padding records none
    assert estimated_bytes(model.config, n, None, attention_itemsize=0) == held + bias
