"""XLM and Flaubert (one multi-head attention module, copied) and XLNet (relative attention with segments) compute
attention in their own modules: module hooks record them, exactly as eager `output_attentions` returns it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers as t

from attnwidget import capture
from conftest import MINILM_VOCAB, PAD, eager_attentions, softmax_of_scores

TEXTS = ["leaves fall in autumn and the old trees stand bare", "bare trees"]
PAIRS = ["the wind blows", "in the wind"]


def build(config):
    torch.manual_seed(0)
    return t.AutoModel.from_config(config, attn_implementation="eager").eval()


def xlm_style(config_class, **options):
    return build(config_class(vocab_size=MINILM_VOCAB, pad_token_id=PAD, emb_dim=32, n_layers=2, n_heads=4,
                              init_std=0.2, embed_init_std=0.2, **options))  # fmt: skip


def xlnet(**options):
    return build(t.XLNetConfig(vocab_size=MINILM_VOCAB, pad_token_id=PAD, d_model=32, n_layer=2, n_head=4,
                               d_inner=64, initializer_range=0.2, **options))  # fmt: skip


def captured_padded_row(model, tokenizer, **texts):
    """The capture of the batch's padded row (the short one), and eager's attention for it without its padding."""
    row = 1
    result = capture(model, tokenizer, TEXTS, row=row, **texts)
    pair = texts.get("text_pair")
    batch = tokenizer(TEXTS, pair, padding=True, return_tensors="pt")
    inputs = {key: value for key, value in batch.items() if key in ("input_ids", "attention_mask", "token_type_ids")}
    keep = batch["attention_mask"][row].bool().numpy()
    assert not keep.all(), "the row must have had padding to strip"
    return result, eager_attentions(model, inputs)["self"][:, row][:, :, keep][..., keep]


def captured_alone(model, tokenizer, text: str):
    """The capture of one text, and eager's attention for it."""
    expected = eager_attentions(model, dict(tokenizer(text, return_tensors="pt")))["self"][:, 0]
    return capture(model, tokenizer, text), expected


def assert_exact(result, expected):
    np.testing.assert_array_equal(result.attention(), expected)
    for layer in range(result.num_layers()):
        np.testing.assert_allclose(softmax_of_scores(result, layer, "self"), expected[layer], atol=1e-4, rtol=0)


def assert_unhooked(model):
    assert all(not module._forward_hooks and not module._forward_pre_hooks for module in model.modules())


@pytest.mark.parametrize("config_class", [t.XLMConfig, t.FlaubertConfig])
def test_xlm_style_padded_row_is_exact(minilm_tokenizer, config_class):
    """Their mask is the batch's own (1 = attend, per key); the queries are scaled before the product."""
    model = xlm_style(config_class)
    result, expected = captured_padded_row(model, minilm_tokenizer)
    assert_exact(result, expected)
    assert result.layer_scale(0) == pytest.approx(8**-0.5)
    bias = result.bias(0)
    assert bias is None or np.isfinite(bias).all(), "padding is stripped: nothing is masked in the row that is kept"
    assert_unhooked(model)


@pytest.mark.parametrize("config_class", [t.XLMConfig, t.FlaubertConfig])
def test_xlm_style_causal_models_mask_later_tokens(minilm_tokenizer, config_class):
    model = xlm_style(config_class, causal=True)  # their mask is then [batch, queries, keys]
    result, expected = captured_alone(model, minilm_tokenizer, TEXTS[0])
    assert_exact(result, expected)
    n = len(result.tokens)
    np.testing.assert_array_equal(np.isneginf(result.bias(1)[0]), np.triu(np.ones((n, n), bool), k=1))
    assert result.attention()[:, :, np.triu(np.ones((n, n), bool), k=1)].max() == 0


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_xlnet_padded_pair_is_exact(minilm_tokenizer, padding_side):
    """A sentence pair gives XLNet's segment term something to tell apart; left padding is XLNet's own."""
    tokenizer = type(minilm_tokenizer).from_pretrained(minilm_tokenizer.name_or_path, padding_side=padding_side)
    model = xlnet()
    result, expected = captured_padded_row(model, tokenizer, text_pair=PAIRS)
    assert result.sides["input"].segment_b_start is not None
    assert_exact(result, expected)
    assert_unhooked(model)


def test_xlnet_bias_holds_its_position_and_segment_terms(minilm_tokenizer):
    model = xlnet()
    result = capture(model, minilm_tokenizer, TEXTS[0], text_pair=PAIRS[0])
    n = len(result.tokens)
    for layer in range(2):
        bias = result.bias(layer)
        assert bias.shape == (4, n, n) and np.isfinite(bias).all(), "no padding: every cell holds relative terms"
        assert not np.allclose(bias[0], bias[1]), "each head has its own terms"
        query, key = result.query_key(layer)
        content_only = np.einsum("hqd,hkd->hqk", query, key) * result.layer_scale(layer)
        weights = np.exp(content_only - content_only.max(-1, keepdims=True))
        off_by = np.abs(weights / weights.sum(-1, keepdims=True) - result.attention()[layer]).max()
        assert off_by > 1e-2, "without the position and segment terms the attention is not explained"
    assert result.layer_scale(0) == pytest.approx(8**-0.5)


def test_xlnet_unidirectional_attention_is_causal(minilm_tokenizer):
    """attn_type="uni" masks later tokens; each token still sees itself (XLNet's content stream)."""
    model = xlnet(attn_type="uni")
    result, expected = captured_alone(model, minilm_tokenizer, TEXTS[0])
    assert_exact(result, expected)
    later = np.triu(np.ones((len(result.tokens),) * 2, bool), k=1)
    np.testing.assert_array_equal(np.isneginf(result.bias(0)[0]), later)
