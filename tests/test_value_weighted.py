"""Value-weighted attention (docs/analysis.md) against the same sum computed by hand from the model's own weights.

The reference takes each layer's input from `output_hidden_states`, projects it to values with the layer's own
value projection, and each head's values through its columns of the output projection; the attention comes from
an eager copy with `output_attentions`. Nothing of it goes through the capture's hooks.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

from attnwidget import capture
from conftest import browser_request, build_tiny, eager_attentions, model_state

TEXT = "leaves fall in autumn and the old trees stand bare"


def reference(attention: np.ndarray, values: torch.Tensor, out_rows: torch.Tensor, heads: int) -> np.ndarray:
    """α_ij ‖v_j W_O^h‖ [heads, n_query, n_key] from attention [heads, n_query, n_key], `values` [n_key, kv_heads *
    head_dim] and the output projection's weight as [heads * head_dim, hidden]."""
    out_rows, head_dim = out_rows.detach(), out_rows.shape[0] // heads
    kv_heads = values.shape[-1] // head_dim
    norms = []
    for head in range(heads):
        kv = head // (heads // kv_heads)
        value = values[:, kv * head_dim : (kv + 1) * head_dim].double()
        norms.append((value @ out_rows[head * head_dim : (head + 1) * head_dim].double()).norm(dim=-1))
    return attention * torch.stack(norms).numpy()[:, None, :]


def assert_close(result, stack: str, layer: int, expected: np.ndarray) -> None:
    got = np.stack([result.value_weighted(layer, head, stack) for head in range(expected.shape[0])])
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7 * float(np.abs(expected).max()))


def captured_and_eager(model, tokenizer):
    """The capture of TEXT, each layer's input (`output_hidden_states`) and eager attention [layers, heads, n, n]."""
    result = capture(model, tokenizer, TEXT)
    inputs = tokenizer(TEXT, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**inputs, output_hidden_states=True).hidden_states
    return result, [states[0] for states in hidden], eager_attentions(model, inputs)["self"][:, 0]


def test_minilm_matches_its_own_value_and_output_weights(minilm):
    model, tokenizer = minilm
    result, hidden, attention = captured_and_eager(model, tokenizer)
    assert result.has_value_weights() and result.why_no_value_weights() is None
    for layer, block in enumerate(model.encoder.layer):
        with torch.no_grad():
            values = block.attention.self.value(hidden[layer])
        out_rows = block.attention.output.dense.weight.T
        assert_close(result, "self", layer, reference(attention[layer], values, out_rows, 12))


def gqa_llama(tokenizer):
    config = transformers.LlamaConfig(
        num_hidden_layers=3, num_attention_heads=8, num_key_value_heads=2, hidden_size=64, intermediate_size=128,
        vocab_size=tokenizer.vocab_size, max_position_embeddings=256,
    )  # fmt: skip
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config).eval()


def test_gqa_llama_heads_read_their_shared_values_through_their_own_output_columns(minilm_tokenizer):
    model = gqa_llama(minilm_tokenizer)
    result, hidden, attention = captured_and_eager(model, minilm_tokenizer)
    for layer, block in enumerate(model.model.layers):
        with torch.no_grad():
            values = block.self_attn.v_proj(block.input_layernorm(hidden[layer]))
        expected = reference(attention[layer], values, block.self_attn.o_proj.weight.T, 8)
        assert_close(result, "self", layer, expected)
    # heads 0 and 1 share a value head but not their output columns: their norms differ
    norms = result.value_norms(0)
    assert norms.shape == (8, len(result.tokens)) and not np.allclose(norms[0], norms[1])


def test_gpt2_reads_values_from_its_fused_projection_and_projects_with_conv1d(minilm_tokenizer):
    model = build_tiny("gpt2")
    result, hidden, attention = captured_and_eager(model, minilm_tokenizer)
    width = model.config.n_embd
    for layer, block in enumerate(model.transformer.h):
        with torch.no_grad():
            values = block.attn.c_attn(block.ln_1(hidden[layer]))[:, 2 * width :]
        expected = reference(attention[layer], values, block.attn.c_proj.weight, model.config.n_head)
        assert_close(result, "self", layer, expected)


# Per encoder-decoder: its encoder, then each decoder layer's cross-attention value and output projections.
CROSS_ATTENTION = {
    "bart": lambda model: (
        model.model.encoder,
        [(block.encoder_attn.v_proj, block.encoder_attn.out_proj) for block in model.model.decoder.layers],
    ),
    "t5": lambda model: (
        model.encoder,
        [(block.layer[1].EncDecAttention.v, block.layer[1].EncDecAttention.o) for block in model.decoder.block],
    ),
}


@pytest.mark.parametrize("arch", sorted(CROSS_ATTENTION))
def test_cross_attention_weighs_encoder_keys_by_their_values(arch, minilm_tokenizer):
    model = build_tiny(arch)
    result = capture(model, minilm_tokenizer, TEXT, decoder_text="bare trees")
    assert all(result.has_value_weights(stack) for stack in ("encoder", "decoder", "cross"))
    inputs = minilm_tokenizer(TEXT, return_tensors="pt")
    decoder_ids = torch.tensor([result.sides["decoder"].token_ids])
    encoder, projections = CROSS_ATTENTION[arch](model)
    with torch.no_grad():
        encoded = encoder(**inputs).last_hidden_state[0]
    attention = eager_attentions(model, {**inputs, "decoder_input_ids": decoder_ids})["cross"][:, 0]
    for layer, (value_projection, output_projection) in enumerate(projections):
        with torch.no_grad():
            values = value_projection(encoded)
        expected = reference(attention[layer], values, output_projection.weight.T, result.num_heads("cross"))
        assert expected.shape[1:] == (len(decoder_ids[0]), inputs["input_ids"].shape[1])
        assert_close(result, "cross", layer, expected)


def test_a_gate_between_attention_and_output_projection_leaves_the_layer_without_value_weights(minilm_tokenizer):
    """Whatever changes the attention output before the output projection (here a user's pre-hook, as a gated
    attention would) makes α·‖f‖ wrong: the capture says so instead of returning it."""
    model = gqa_llama(minilm_tokenizer)
    gate = model.model.layers[1].self_attn.o_proj.register_forward_pre_hook(lambda module, args: (args[0] * 0.5,))
    before = model_state(model)
    result = capture(model, minilm_tokenizer, TEXT)
    assert model_state(model) == before  # the capture's own projection hooks are gone
    gate.remove()
    assert not result.has_value_weights()
    assert "model.layers.1.self_attn.o_proj is not the attention's output" in result.why_no_value_weights()
    with pytest.raises(ValueError, match="no value-weighted attention: what reaches model.layers.1"):
        result.value_weighted(0, 0)
    assert result.head_attention(0, 0).sum(axis=-1) == pytest.approx(1)  # the raw attention is there as usual


def test_architectures_recorded_through_module_hooks_have_no_value_weights(minilm_tokenizer):
    result = capture(build_tiny("xlm"), minilm_tokenizer, TEXT)
    assert not result.has_value_weights()
    assert result.why_no_value_weights() == (
        "MultiHeadAttention is recorded through module hooks (docs/coverage.md), which keep no values"
    )


def test_attention_given_as_tensors_has_no_value_weights():
    from attnwidget.capturing.from_tensors import capture_from_attention

    result = capture_from_attention(np.full((1, 2, 3, 3), 1 / 3, dtype=np.float32), ["a", "b", "c"])
    assert not result.has_value_weights()
    assert "captures built from attention tensors" in result.why_no_value_weights()


def test_layers_computed_in_chunks_of_query_rows_keep_the_same_value_weights(minilm_tokenizer):
    from attnwidget.capturing.budget import eager_chunk_rows

    model = gqa_llama(minilm_tokenizer)
    whole = capture(model, minilm_tokenizer, TEXT)
    n = len(whole.tokens)
    budget = 16 * 4 * 8 * n * 3  # a sixteenth of it holds 3 query rows of 8 heads' float32 weights
    assert eager_chunk_rows(1, 8, n, n, budget) == 3
    chunked = capture(model, minilm_tokenizer, TEXT, max_memory_bytes=budget)
    # a chunked layer's output comes from torch's fused attention, a rounding away from eager's: later layers' values
    # differ in their last bits
    for layer in range(3):
        np.testing.assert_allclose(chunked.value_norms(layer), whole.value_norms(layer), rtol=1e-5)
        np.testing.assert_allclose(chunked.value_weighted(layer, 5), whole.value_weighted(layer, 5), rtol=1e-5)


def test_the_views_show_each_query_rows_share_of_the_value_weighted_norm(widgets, minilm_tokenizer):
    from attnwidget import wire

    model = build_tiny("bart")
    result = capture(model, minilm_tokenizer, TEXT, decoder_text="bare trees")
    widget = widgets(result)
    shown = widget.capture
    assert {"encoder·value", "decoder·value", "cross·value", "cross·value·words"} <= set(shown.stacks)
    assert shown.num_heads("cross·value") == result.num_heads("cross")
    raw = result.value_weighted(1, 2, "cross")
    shares = shown.head_attention(1, 2, "cross·value")
    np.testing.assert_allclose(shares, raw / raw.sum(axis=1, keepdims=True), rtol=1e-6)
    np.testing.assert_allclose(shares.sum(axis=1), 1, atol=1e-6)
    assert not np.allclose(shares, result.head_attention(1, 2, "cross"), atol=1e-3), "the values reweigh the keys"
    np.testing.assert_allclose(shown.head_attention(0, 1, "cross·value·words").sum(axis=1), 1, atol=1e-5)
    content, (chunk,) = browser_request(
        widget, {"kind": "request", "id": 1, "what": "attention", "stack": "cross·value", "layer": 1, "head": 2}
    )
    np.testing.assert_allclose(wire.dequantize_attention(chunk, tuple(content["shape"])), shares, atol=1 / 510)


def test_stacks_without_value_weights_get_no_value_view(widgets, minilm_tokenizer):
    shown = widgets(capture(build_tiny("xlm"), minilm_tokenizer, TEXT)).capture
    assert "self·rollout" in shown.stacks and not any("value" in stack for stack in shown.stacks)
    assert "computed from stack 'self'" in shown.why_no_value_weights("self·rollout")


def test_value_stacks_are_added_unasked_only_up_to_the_derived_stacks_size(widgets, monkeypatch, minilm_tokenizer):
    from attnwidget.capturing import derived

    result = capture(build_tiny("bart"), minilm_tokenizer, TEXT, decoder_text="bare trees")
    encoder = result.num_layers("encoder") * result.num_heads("encoder") * len(result.tokens) ** 2
    monkeypatch.setattr(derived, "MAX_DERIVED_VALUES", encoder - 1)
    stacks = widgets(result).capture.stacks
    assert "encoder·value" not in stacks and result.has_value_weights("encoder")
    assert {"decoder·value", "cross·value"} <= set(stacks), "the decoder's and cross stacks are smaller"


@pytest.mark.parametrize("arch", ["llama", "bart"])
def test_a_row_of_a_padded_batch_has_the_value_weights_of_its_text_alone(arch, minilm_tokenizer):
    model = build_tiny(arch)
    decoder = {"decoder_text": ["bare trees"]} if arch == "bart" else {}
    alone = capture(model, minilm_tokenizer, ["short text"], row=0, **decoder)
    decoders = {"decoder_text": ["the old trees stand bare", "bare trees"]} if arch == "bart" else {}
    padded = capture(model, minilm_tokenizer, [TEXT, "short text"], row=1, **decoders)
    for stack in alone.stacks:
        for layer in range(alone.num_layers(stack)):
            expected = alone.value_weighted(layer, 1, stack)
            got = padded.value_weighted(layer, 1, stack)
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6 * float(expected.max()))
