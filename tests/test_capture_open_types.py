"""Architectures the coverage test once left open, each captured exactly on a tiny model with its pattern visible."""

from __future__ import annotations

import numpy as np
import torch

from attnwidget import capture
from conftest import assert_record_matches_capture, eager_attentions, softmax_of_scores

TEXT = "leaves fall in autumn and the old trees stand bare"


def _tiny(config_class, model_class, **fields):
    torch.manual_seed(0)
    config = config_class(vocab_size=30522, pad_token_id=0, initializer_range=0.2, **fields)
    return model_class._from_config(config, attn_implementation="eager").eval()


def _assert_exact(result, model, inputs: dict, stack: str = "self") -> np.ndarray:
    """The capture equals eager output_attentions, and its queries, keys, scale, bias and sinks give it back."""
    reference = eager_attentions(model, inputs)[stack][:, 0]
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
    attention = _assert_exact(result, model, dict(minilm_tokenizer(TEXT, return_tensors="pt")))
    # One key head for all four query heads in layer 0, two in layer 1: keys are kept per query head.
    assert result.kv_head_of().tolist() == [0, 1, 2, 3]
    full_keys, sliding_keys = (result.query_key(layer)[1] for layer in (0, 1))
    assert all(np.array_equal(full_keys[0], full_keys[head]) for head in range(4))
    assert np.array_equal(sliding_keys[0], sliding_keys[1]) and not np.array_equal(sliding_keys[1], sliding_keys[2])
    # The sliding layer's sink takes weight from every row; the window of 4 leaves early keys unseen.
    assert result.sinks(0) is None and result.sinks(1).shape == (4,)
    assert (attention[1].sum(-1) < 1 - 1e-3).all() and attention[1, :, -1, 0].max() == 0


def test_stacks_named_with_a_prefix_are_told_apart(minilm_tokenizer):
    """SeamlessM4T's text-to-text model names its stacks "text_encoder" and "text_decoder"."""
    from transformers import SeamlessM4TConfig, SeamlessM4TForTextToText

    model = _tiny(
        SeamlessM4TConfig, SeamlessM4TForTextToText, hidden_size=32, encoder_layers=2, decoder_layers=2,
        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64,
        max_position_embeddings=128, bos_token_id=101, eos_token_id=102, decoder_start_token_id=102,
    )  # fmt: skip
    result = capture(model, minilm_tokenizer, TEXT, decoder_text="bare trees")
    assert result.stacks == ("encoder", "decoder", "cross")
    n_input, n_decoder = len(result.sides["input"]), len(result.sides["decoder"])
    assert n_input == 12 and n_decoder == 5
    inputs = dict(minilm_tokenizer(TEXT, return_tensors="pt"))
    inputs["decoder_input_ids"] = torch.tensor([result.sides["decoder"].token_ids])
    shapes = {"encoder": (n_input, n_input), "decoder": (n_decoder, n_decoder), "cross": (n_decoder, n_input)}
    for stack, shape in shapes.items():
        assert _assert_exact(result, model, inputs, stack).shape == (2, 4, *shape)
    assert result.attention("decoder")[:, :, 0, 1:].max() == 0  # the decoder is causal, the encoder is not
    assert result.attention("encoder")[:, :, 0, 1:].min() > 0


def test_lightning_attention_layers_are_skipped_with_the_models_layer_numbers(minilm_tokenizer):
    """MiniMax's lightning (linear) attention layers have no attention map; its softmax layers keep their numbers."""
    from transformers import MiniMaxConfig, MiniMaxForCausalLM

    layer_types = ["full_attention", "linear_attention", "full_attention"]
    model = _tiny(
        MiniMaxConfig, MiniMaxForCausalLM, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, num_local_experts=2, num_experts_per_tok=1,
        layer_types=layer_types, max_position_embeddings=128,
    )  # fmt: skip
    result = capture(model, minilm_tokenizer, TEXT)
    assert result.layer_numbers() == [0, 2]
    with torch.no_grad():
        out = model(**minilm_tokenizer(TEXT, return_tensors="pt"), output_attentions=True, use_cache=False)
    # Eager returns the lightning layer's recurrent state, [heads, head_dim, head_dim], in its place.
    assert out.attentions[1].shape[-2:] == (8, 8)
    reference = np.stack([out.attentions[number][0].numpy() for number in (0, 2)])
    np.testing.assert_allclose(result.attention(), reference, atol=1e-6, rtol=0)
    for layer in range(2):
        np.testing.assert_allclose(softmax_of_scores(result, layer, "self"), reference[layer], atol=1e-4, rtol=0)


def _tiny_inkling2(config_class, model_class, **fields):
    """Sliding and full layers, blocks of 2 layers for the block attention residuals, a window of 4."""
    return _tiny(
        config_class, model_class, unpadded_vocab_size=30522, hidden_size=32, num_hidden_layers=4,
        layer_types=["hybrid_sliding", "hybrid", "hybrid_sliding", "hybrid"], num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, swa_num_attention_heads=4, swa_num_key_value_heads=2, swa_head_dim=8,
        sliding_window_size=4, rel_extent=8, d_rel=4, n_layers_per_attn_res_block=2, moe_intermediate_size=32,
        n_routed_experts=4, num_experts_per_tok=2, max_position_embeddings=128, **fields,
    )  # fmt: skip


def test_inkling2_token_attention_is_exact_with_a_sink_per_query(minilm_tokenizer):
    """Inkling2 attends over tokens (with a relative bias and a sink logit computed from each query token) and,
    per token, over its blocks of layers: the token attention is recorded, the attention over layers is not."""
    from transformers import Inkling2ForCausalLM, Inkling2TextConfig

    from attnwidget import wire

    model = _tiny_inkling2(Inkling2TextConfig, Inkling2ForCausalLM)
    hooks_before = [dict(module._forward_hooks) for module in model.modules()]
    result = capture(model, minilm_tokenizer, TEXT)
    assert [dict(module._forward_hooks) for module in model.modules()] == hooks_before
    attention = _assert_exact(result, model, dict(minilm_tokenizer(TEXT, return_tensors="pt")))
    assert result.layer_numbers() == [0, 1, 2, 3]
    n = len(result.tokens)
    for layer in range(4):
        sinks = result.sinks(layer)
        assert sinks.shape == (4, n) and not np.allclose(sinks, sinks[:, :1])  # each query its own sink
        for head in range(4):
            assert_record_matches_capture(result, "self", layer, head, *wire.decode_query_key_record(
                wire.query_key_record(result, "self", layer, head)))  # fmt: skip
    assert (attention.sum(-1) < 1 - 1e-3).all()
    assert attention[0, :, -1, : n - 4].max() == 0 and attention[1, :, -1, : n - 4].min() > 0  # window, then full


def test_inkling2_loop_records_each_pass_through_its_looped_layers(minilm_tokenizer):
    from transformers import Inkling2LoopForCausalLM, Inkling2LoopTextConfig

    model = _tiny_inkling2(
        Inkling2LoopTextConfig, Inkling2LoopForCausalLM, loop_layer_index_start=2, loop_layer_index_end=4,
        loop_num_passes=2, loop_gate_rank=8,
    )  # fmt: skip
    result = capture(model, minilm_tokenizer, TEXT)
    _assert_exact(result, model, dict(minilm_tokenizer(TEXT, return_tensors="pt")))
    assert result.stack().model_layer_numbers == [0, 1, 2, 3, 2, 3]  # layers 2 and 3 run twice
    assert result.layer_numbers() == list(range(6))  # numbers that repeat are shown as indices
