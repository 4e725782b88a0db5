"""BERT variants that compute attention in their own modules, recorded through module hooks: DeBERTa (v1),
ConvBERT, SqueezeBERT, I-BERT and LUKE, each exact against eager `output_attentions` (DeBERTa's relative
terms are checked with DeBERTa-v2's in test_capture_architectures.py)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from attnwidget import capture
from attnwidget.capturing import IncompleteScoresWarning
from conftest import eager_attentions, softmax_of_scores

TEXT = "leaves fall in autumn and the old trees stand bare"
VARIANTS = ("deberta", "convbert", "squeezebert", "ibert", "luke")


def eager_weights(arch: str, model, inputs: dict) -> np.ndarray:
    """Eager `output_attentions` as weights: SqueezeBERT returns its scores before the softmax instead."""
    reference = eager_attentions(model, inputs)["self"]
    return torch.from_numpy(reference).softmax(dim=-1).numpy() if arch == "squeezebert" else reference


def no_hooks_left(model) -> bool:
    return all(not module._forward_hooks and not module._forward_pre_hooks for module in model.modules())


@pytest.mark.parametrize("arch", VARIANTS)
def test_variant_is_exact_and_leaves_no_hooks(tiny_models, arch):
    model, tokenizer = tiny_models(arch)
    with warnings.catch_warnings():
        warnings.simplefilter("error", IncompleteScoresWarning)  # q, k, scale and bias explain it all
        result = capture(model, tokenizer, TEXT)
    reference = eager_weights(arch, model, dict(tokenizer(TEXT, return_tensors="pt")))
    np.testing.assert_allclose(result.attention(), reference[:, 0], atol=1e-6, rtol=0)
    for layer in range(2):
        np.testing.assert_allclose(softmax_of_scores(result, layer, "self"), reference[layer, 0], atol=1e-4, rtol=0)
    assert no_hooks_left(model)


@pytest.mark.parametrize("arch", ["deberta", "squeezebert"])
def test_a_padded_row_is_exact_without_its_padding(tiny_models, arch):
    """The masks these modules are given ([batch, 1, n, n] booleans, additive rows) keep the row's tokens."""
    model, tokenizer = tiny_models(arch)
    texts = [TEXT, "bare trees"]
    result = capture(model, tokenizer, texts, row=1)
    alone = eager_weights(arch, model, dict(tokenizer(texts[1], return_tensors="pt")))
    assert result.attention().shape[-1] == alone.shape[-1] == 4
    np.testing.assert_allclose(result.attention(), alone[:, 0], atol=1e-5, rtol=0)


def test_deberta_with_talking_heads_is_refused_with_what_to_do(minilm_tokenizer):
    from transformers import DebertaConfig, DebertaModel

    config = DebertaConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                           intermediate_size=64, talking_head=True)  # fmt: skip
    model = DebertaModel(config).eval()
    with pytest.raises(ValueError, match="talking heads.*AttentionWidget.from_attention"):
        capture(model, minilm_tokenizer, TEXT)
    assert no_hooks_left(model)


def test_convbert_records_its_softmax_heads(tiny_models):
    """4 heads with head_ratio 2: the softmax part has 2 heads of (32 / 2) / 2 = 8 dimensions; the other half
    of each layer's output is the span-based convolution, which has no attention map."""
    model, tokenizer = tiny_models("convbert")
    result = capture(model, tokenizer, TEXT)
    query, key = result.query_key(0)
    assert result.attention().shape[:2] == (2, 2)
    assert query.shape == key.shape == (2, len(result.tokens), 8)


def test_quantized_ibert_keeps_its_own_attention_and_warns_about_its_integer_softmax(minilm_tokenizer):
    """In quant_mode I-BERT's softmax is an integer approximation: the attention is the model's own, and the
    neuron view's softmax(q·k) is only close to it, which the capture says."""
    from transformers import IBertConfig, IBertModel

    config = IBertConfig(vocab_size=30522, pad_token_id=0, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                         intermediate_size=64, initializer_range=0.2, quant_mode=True)  # fmt: skip
    torch.manual_seed(0)
    model = IBertModel(config).eval()
    with pytest.warns(IncompleteScoresWarning, match="IBertSelfAttention"):
        result = capture(model, minilm_tokenizer, TEXT)
    reference = eager_attentions(model, dict(minilm_tokenizer(TEXT, return_tensors="pt")))["self"]
    np.testing.assert_array_equal(result.attention(), reference[:, 0])
    assert no_hooks_left(model)

