"""Architectures the coverage test once left open, each captured exactly on a tiny model with its pattern visible."""

from __future__ import annotations

import numpy as np
import torch

from attnwidget import capture
from conftest import eager_attentions, softmax_of_scores

TEXT = "leaves fall in autumn and the old trees stand bare"


def _tiny(config_class, model_class, **fields):
    torch.manual_seed(0)
    config = config_class(vocab_size=30522, pad_token_id=0, initializer_range=0.2, **fields)
    return model_class._from_config(config, attn_implementation="eager").eval()


def _assert_exact(result, model, tokenizer, stack: str = "self") -> np.ndarray:
    """The capture equals eager output_attentions, and its queries, keys, scale, bias and sinks give it back."""
    reference = eager_attentions(model, dict(tokenizer(TEXT, return_tensors="pt")))[stack][:, 0]
    attention = result.attention(stack)
    np.testing.assert_allclose(attention, reference, atol=1e-6, rtol=0)
    for layer in range(result.num_layers(stack)):
        np.testing.assert_allclose(softmax_of_scores(result, layer, stack), attention[layer], atol=1e-4, rtol=0)
    return attention


def test_layers_with_their_own_key_head_grouping_map_each_query_head_right(minilm_tokenizer):
    """MiMo-V2-Flash's sliding layers have twice the key heads of its full layers, and attention sinks."""
    from transformers import MiMoV2FlashConfig, MiMoV2FlashForCausalLM

    model = _tiny(
        MiMoV2FlashConfig, MiMoV2FlashForCausalLM, hidden_size=32, intermediate_size=64, moe_intermediate_size=32,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1, head_dim=8, v_head_dim=8,
        n_routed_experts=2, num_experts_per_tok=1, layer_types=["full_attention", "sliding_attention"],
        sliding_window=4, max_position_embeddings=128,
    )  # fmt: skip
    hooks_before = [dict(module._forward_hooks) for module in model.modules()]
    result = capture(model, minilm_tokenizer, TEXT)
    assert [dict(module._forward_hooks) for module in model.modules()] == hooks_before
    attention = _assert_exact(result, model, minilm_tokenizer)
    # One key head for all four query heads in layer 0, two in layer 1: keys are kept per query head.
    assert result.kv_head_of().tolist() == [0, 1, 2, 3]
    full_keys, sliding_keys = (result.query_key(layer)[1] for layer in (0, 1))
    assert all(np.array_equal(full_keys[0], full_keys[head]) for head in range(4))
    assert np.array_equal(sliding_keys[0], sliding_keys[1]) and not np.array_equal(sliding_keys[1], sliding_keys[2])
    # The sliding layer's sink takes weight from every row; the window of 4 leaves early keys unseen.
    assert result.sinks(0) is None and result.sinks(1).shape == (4,)
    assert (attention[1].sum(-1) < 1 - 1e-3).all() and attention[1, :, -1, 0].max() == 0
