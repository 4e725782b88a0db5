"""Architectures that compute attention in modules of their own, from before transformers' AttentionInterface:
OpenAI GPT, XGLM, GPT-NeoX-Japanese and CPM-Ant (decoders) and FSMT (fairseq's encoder-decoder).

Each capture must equal eager `output_attentions`, softmax(q @ k.T * scale + bias) must give it back, and no
hook may stay on the model afterwards.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from attnwidget import capture, wire
from conftest import eager_attentions, softmax_of_scores

TEXT = "leaves fall in autumn and the old trees stand bare"


def inputs_for(model, encoding, decoder_ids=None) -> dict:
    """What capture fed the model, rebuilt for the eager reference."""
    parameters = inspect.signature(model.forward).parameters
    inputs = {key: value for key, value in encoding.items() if key in parameters}
    if decoder_ids is not None:
        inputs["decoder_input_ids"] = decoder_ids
    return inputs


def assert_exact(result, reference: np.ndarray, stack: str) -> None:
    np.testing.assert_allclose(result.attention(stack), reference, atol=1e-6, rtol=0)
    for layer in range(result.num_layers(stack)):
        np.testing.assert_allclose(softmax_of_scores(result, layer, stack), reference[layer], atol=1e-4, rtol=0)


def assert_no_hooks_left(model) -> None:
    assert all(not module._forward_hooks and not module._forward_pre_hooks for module in model.modules())


@pytest.mark.parametrize("arch", ["openai-gpt", "xglm", "gpt_neox_japanese"])
def test_decoders_are_exact_and_see_only_earlier_tokens(tiny_models, arch):
    model, tokenizer = tiny_models(arch)
    result = capture(model, tokenizer, TEXT)
    reference = eager_attentions(model, inputs_for(model, tokenizer(TEXT, return_tensors="pt")))["self"]
    assert result.num_layers() == 2
    assert_exact(result, reference[:, 0], "self")
    n = len(result.tokens)
    future = np.triu(np.ones((n, n), dtype=bool), k=1)
    assert np.all(result.attention()[..., future] == 0) and result.attention()[..., ~future].min() < 0.5
    assert np.all(np.isneginf(result.bias(0)[..., future]))
    assert_no_hooks_left(model)


def test_openai_gpt_masks_with_its_own_causal_buffer(tiny_models):
    model, tokenizer = tiny_models("openai-gpt")  # its model gives the attention module no causal mask
    result = capture(model, tokenizer, TEXT)
    n = len(result.tokens)
    assert result.bias(0).shape[-2:] == (n, n)
    assert result.bias(1) is result.bias(0), "every layer reads the same buffer: stored once"
    assert result.layer_scale(0) == pytest.approx(8**-0.5)


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_fsmt_stacks_are_exact_in_a_padded_batch(tiny_models, padding_side):
    """One row of a batch, without its padding on either side, read from FSMT's [seq, batch, dim] tensors; the
    decoder's causal mask is an additive [n, n] term of its own."""
    model, tokenizer = tiny_models("fsmt")
    tokenizer = type(tokenizer).from_pretrained(tokenizer.name_or_path, padding_side=padding_side)
    texts, decoder_texts = ["leaves fall", TEXT], ["fall", "bare trees stand"]
    result = capture(model, tokenizer, texts, row=0, decoder_text=decoder_texts)

    batch = tokenizer(texts, padding=True, return_tensors="pt")
    decoder = tokenizer(text_target=decoder_texts, padding=True, return_tensors="pt")
    start = torch.full((2, 1), model.config.decoder_start_token_id)
    inputs = inputs_for(model, batch, torch.cat([start, decoder["input_ids"]], dim=1))
    inputs["decoder_attention_mask"] = torch.cat([torch.ones_like(start), decoder["attention_mask"]], dim=1)
    reference = eager_attentions(model, inputs)
    keep = {side: mask[0].bool().numpy() for side, mask in
            (("encoder", batch["attention_mask"]), ("decoder", inputs["decoder_attention_mask"]))}  # fmt: skip
    assert not keep["encoder"].all() and not keep["decoder"].all(), "row 0 must have had padding on both sides"
    for stack in ("encoder", "decoder", "cross"):
        query_side, key_side = ("encoder", "decoder")[stack != "encoder"], ("decoder", "encoder")[stack != "decoder"]
        expected = reference[stack][:, 0][:, :, keep[query_side]][..., keep[key_side]]
        assert_exact(result, expected, stack)
    n = keep["decoder"].sum()
    future = np.triu(np.ones((n, n), dtype=bool), k=1)
    assert np.all(result.attention("decoder")[..., future] == 0)
    assert_no_hooks_left(model)


def test_cpmant_prompt_is_the_sink_with_its_own_logit_per_query(tiny_models):
    """CPM-Ant prepends 32 prompt positions and its eager maps leave them out: each row sums to the text's share.
    The capture shows exactly those rows with the model's own position bias, and the prompt as the sink: per
    query the log-sum-exp of its prompt logits, whose weight is what the text's tokens leave of the row."""
    model, tokenizer = tiny_models("cpmant")
    result = capture(model, tokenizer, TEXT)
    inputs = inputs_for(model, tokenizer(TEXT, return_tensors="pt"))
    reference = eager_attentions(model, inputs)["self"]
    n = len(result.tokens)
    assert reference.shape[-2:] == (n, n)
    assert_exact(result, reference[:, 0], "self")
    text_share = result.attention().sum(axis=-1)
    assert text_share.max() <= 1 + 1e-6 and text_share.min() < 0.9, "some rows give much of their weight to the prompt"
    assert result.sink().label == "<prompt>" and "32 prompt positions" in result.sink().stands_for
    prompt = model.cpmant.prompt_length
    for layer in range(result.num_layers()):
        sinks = result.sinks(layer)
        assert sinks.shape == (4, n) and np.ptp(sinks, axis=-1).min() > 0, "each query has its own prompt logit"
        # The sink's weight, in the softmax over the text and the sink, is the share of the prompt the model gave.
        query, key = result.query_key(layer)
        logits = np.einsum("hqd,hkd->hqk", query, key).astype(np.float64) * result.layer_scale(layer) + result.bias(layer)
        sink_weight = np.exp(sinks - np.logaddexp(np.logaddexp.reduce(logits, axis=-1), sinks))
        np.testing.assert_allclose(sink_weight, 1 - text_share[layer], atol=1e-5)
        np.testing.assert_allclose(softmax_of_scores(result, layer, "self"), result.attention()[layer], atol=1e-4)
    # The bias is the model's position bias over the text, not shifted: the same for every layer, as CPM-Ant's is.
    bias = result.bias(0)
    assert np.isfinite(bias).all() and np.array_equal(bias, result.bias(1))
    seen = []
    handle = model.cpmant.position_bias.register_forward_hook(lambda module, args, output: seen.append(output))
    with torch.no_grad():
        model(**inputs)
    handle.remove()
    np.testing.assert_array_equal(bias, seen[0][0, :, prompt:, prompt:].numpy())
    future = np.triu(np.ones((n, n), dtype=bool), k=1)
    assert result.attention()[..., future].max() > 0.1, "CPM-Ant's text tokens see each other both ways"
    assert_no_hooks_left(model)


def test_cpmant_rows_it_masks_entirely_stay_zero(tiny_models):
    """CPM-Ant takes padding to be on the left. Padded on the right, the short row's own tokens are masked
    entirely, and CPM-Ant zeroes their weights after the softmax: the capture gives those zeros, not NaN."""
    model, tokenizer = tiny_models("cpmant")
    tokenizer = type(tokenizer).from_pretrained(tokenizer.name_or_path, padding_side="right")
    texts = ["leaves fall", TEXT]
    result = capture(model, tokenizer, texts, row=0)
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    keep = batch["attention_mask"][0].bool().numpy()
    reference = eager_attentions(model, inputs_for(model, batch))["self"][:, 0][:, :, keep][..., keep]
    assert np.all(reference == 0)
    np.testing.assert_array_equal(result.attention(), reference)
    # They see no prompt position either: the sink's logit is -inf, and nothing of the row goes to it.
    for layer in range(result.num_layers()):
        assert np.all(result.sinks(layer) == -np.inf)
        for head in range(result.num_heads("self")):
            chunk, shape = wire.head_chunk(result, "self", layer, head)
            assert not wire.split_head_chunk(chunk, shape, has_sinks=True)[1].any()
