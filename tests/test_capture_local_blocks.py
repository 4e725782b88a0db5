"""Encoders that attend in blocks, captured exactly as dense maps over the tokens: LongT5's local attention as a
band; LongT5's transient-global attention and Pegasus-X's blocks with their keys that are no tokens (block
summaries, global tokens) as the sink, one logit per query, whose weight is what those keys took."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from attnwidget import capture
from conftest import eager_attentions, eager_copy, longt5_local_as_dense, pegasus_x_local_as_dense, softmax_of_scores

TEXT = "leaves fall in autumn and the old trees stand bare"
DECODER_TEXT = "bare trees"
RADIUS = 2  # the tiny LongT5's local_radius


@pytest.fixture(scope="module")
def longt5(tiny_models):
    model, tokenizer = tiny_models("longt5")
    return model, tokenizer, capture(model, tokenizer, TEXT, decoder_text=DECODER_TEXT)


def _eager_stacks(model, tokenizer, result) -> dict[str, np.ndarray]:
    """Eager output_attentions per stack, [layers, heads, n_query, n_key], the encoder's spread out of its blocks."""
    inputs = dict(tokenizer(TEXT, return_tensors="pt"))
    inputs["decoder_input_ids"] = torch.tensor([result.sides["decoder"].token_ids])
    stacks = eager_attentions(model, inputs)
    n = inputs["input_ids"].shape[-1]
    stacks["encoder"] = np.stack(
        [longt5_local_as_dense(torch.from_numpy(blocks), n)[0] for blocks in stacks["encoder"]]
    )
    return {name: layers if name == "encoder" else layers[:, 0] for name, layers in stacks.items()}


def test_longt5_local_attention_equals_eager_in_every_stack(longt5):
    model, tokenizer, result = longt5
    expected = _eager_stacks(model, tokenizer, result)
    assert result.stacks == ("encoder", "decoder", "cross")
    for stack in result.stacks:
        np.testing.assert_array_equal(result.attention(stack), expected[stack])
        for layer in range(result.num_layers(stack)):
            np.testing.assert_allclose(
                softmax_of_scores(result, layer, stack), result.attention(stack)[layer], atol=1e-4
            )


def test_longt5_encoder_attends_only_within_its_radius(longt5):
    _, _, result = longt5
    attention = result.attention("encoder")
    n = attention.shape[-1]
    distance = np.abs(np.arange(n)[:, None] - np.arange(n)[None, :])
    assert n > 3 * (RADIUS + 1)  # more than one window: the band is visible
    assert (attention[..., distance > RADIUS] == 0).all()
    np.testing.assert_allclose(attention.sum(axis=-1), 1, atol=1e-5)  # all of each row's weight is in the band
    for layer in range(result.num_layers("encoder")):
        bias = result.bias(layer, "encoder")
        assert np.isneginf(bias[:, distance > RADIUS]).all()
        assert np.isfinite(bias[:, distance <= RADIUS]).all()


def test_longt5_relative_position_bias_depends_on_the_distance_and_the_head(longt5):
    _, _, result = longt5
    bias = result.bias(0, "encoder")
    n = bias.shape[-1]
    for offset in range(-RADIUS, RADIUS + 1):
        diagonal = np.diagonal(bias, offset=offset, axis1=1, axis2=2)  # [heads, n - |offset|]
        np.testing.assert_array_equal(diagonal, diagonal[:, :1].repeat(n - abs(offset), axis=1))
    band = np.stack([np.diagonal(bias, offset=offset, axis1=1, axis2=2)[:, 0] for offset in range(-RADIUS, RADIUS + 1)])
    assert len(np.unique(band)) > RADIUS  # distances and heads have biases of their own


def test_a_padded_row_is_captured_as_the_same_text_alone(tiny_models, longt5):
    model, tokenizer, alone = longt5
    batch = capture(
        model, tokenizer, [TEXT, TEXT + " and the wind blows cold"], row=0, decoder_text=[DECODER_TEXT, DECODER_TEXT]
    )
    np.testing.assert_allclose(batch.attention("encoder"), alone.attention("encoder"), atol=1e-6)
    for layer in range(alone.num_layers("encoder")):
        np.testing.assert_array_equal(batch.bias(layer, "encoder"), alone.bias(layer, "encoder"))


def _assert_untouched(model) -> None:
    assert all(not module._forward_hooks and not module._forward_pre_hooks for module in model.modules())
    assert model.config._attn_implementation == "eager"


def _assert_sink_is_the_share_of_keys_outside_the_text(result, stack: str, share: np.ndarray) -> None:
    """The sink's weight in the softmax over the recorded tokens and the sink is the share `share` [layers, heads,
    n] the model gave its keys that are no tokens, and with the tokens' weights makes 1."""
    for layer in range(result.num_layers(stack)):
        query, key = result.query_key(layer, stack)
        logits = np.einsum("hqd,hkd->hqk", query, key).astype(np.float64) * result.layer_scale(layer, stack)
        logits = logits + result.bias(layer, stack)
        sinks = result.sinks(layer, stack)
        assert sinks.shape == logits.shape[:2] and np.ptp(sinks, axis=-1).min() > 0, "one logit per query"
        sink_weight = np.exp(sinks - np.logaddexp(np.logaddexp.reduce(logits, axis=-1), sinks))
        np.testing.assert_allclose(sink_weight, share[layer], atol=1e-4)
        np.testing.assert_allclose(sink_weight, 1 - result.attention(stack)[layer].sum(-1), atol=1e-4)
        np.testing.assert_allclose(softmax_of_scores(result, layer, stack), result.attention(stack)[layer], atol=1e-4)


def _transient_global_longt5(tiny_models):
    model, tokenizer = tiny_models("longt5")
    config = copy.deepcopy(model.config)
    config.encoder_attention_type = "transient-global"
    config.global_block_size = 4
    torch.manual_seed(0)
    return type(model)(config).eval(), tokenizer


def test_longt5_transient_global_is_exact_over_the_tokens_with_the_block_summaries_as_the_sink(tiny_models):
    model, tokenizer = _transient_global_longt5(tiny_models)
    result = capture(model, tokenizer, TEXT, decoder_text=DECODER_TEXT)
    _assert_untouched(model)

    inputs = dict(tokenizer(TEXT, return_tensors="pt"))
    inputs["decoder_input_ids"] = torch.tensor([result.sides["decoder"].token_ids])
    stacks = eager_attentions(model, inputs)
    n = inputs["input_ids"].shape[-1]
    blocks = torch.from_numpy(stacks["encoder"][:, 0])  # [layers, blocks, heads, L, 3L + summaries]
    summaries = n // 4
    assert blocks.shape[-1] == 3 * (RADIUS + 1) + summaries and summaries > 1
    expected = np.stack([longt5_local_as_dense(layer[None], n)[0] for layer in blocks])
    np.testing.assert_array_equal(result.attention("encoder"), expected)
    for stack in ("decoder", "cross"):
        np.testing.assert_array_equal(result.attention(stack), stacks[stack][:, 0])
    # What the summaries took, per token: block c's row i is token c·L + i.
    share = blocks[..., 3 * (RADIUS + 1) :].sum(-1).transpose(1, 2).flatten(2, 3)[..., :n].numpy()
    assert share.max() > 0.5 and share.min() < 0.5, "the summaries take much of some rows, little of others"
    _assert_sink_is_the_share_of_keys_outside_the_text(result, "encoder", share)
    assert result.sink("encoder").label == "<global>"
    assert f"{summaries} global blocks of 4 tokens" in result.sink("encoder").stands_for
    assert result.sink("decoder") is None


def _global_share(local: list[torch.Tensor], n: int) -> np.ndarray:
    """[layers, heads, n]: what each token gave the 2 global tokens, read from eager's blocks, token t at t + offset
    (as in pegasus_x_local_as_dense)."""
    shares = []
    for blocks in local:
        count, block = blocks.shape[2], blocks.shape[3]
        offset = (count - -(-n // block)) * block // 2
        shares.append(blocks[0, ..., :2].sum(-1).flatten(1, 2)[:, offset : offset + n].numpy())
    return np.stack(shares)


def test_pegasus_x_is_exact_over_the_tokens_with_its_global_tokens_as_the_sink(tiny_models):
    model, tokenizer = tiny_models("pegasus_x")
    assert [layer.stagger_blocks_this_layer for layer in model.model.encoder.layers] == [False, True]
    result = capture(model, tokenizer, TEXT, decoder_text=DECODER_TEXT)
    _assert_untouched(model)

    encoding = tokenizer(TEXT, return_tensors="pt")
    n = encoding["input_ids"].shape[-1]
    assert n % 8 != 0, "the encoder pads the text to a multiple of its blocks"
    decoder_ids = torch.tensor([result.sides["decoder"].token_ids])
    with torch.no_grad():
        out = eager_copy(model)(**encoding, decoder_input_ids=decoder_ids, output_attentions=True)
    local = [layer["local"] for layer in out.encoder_attentions]  # [batch, heads, blocks, 8, 2 + 8]
    expected = np.stack([pegasus_x_local_as_dense(layer, n)[0].numpy() for layer in local])
    np.testing.assert_array_equal(result.attention("encoder"), expected)
    # The layers' blocks straddle each other's: tokens 3 and 4 share a block in the first layer only.
    assert (expected[0, :, 3, 4] > 0).all() and (expected[1, :, 3, 4] == 0).all()
    for stack, maps in (("decoder", out.decoder_attentions), ("cross", out.cross_attentions)):
        np.testing.assert_array_equal(result.attention(stack), torch.stack(maps)[:, 0].numpy())
    _assert_sink_is_the_share_of_keys_outside_the_text(result, "encoder", _global_share(local, n))
    assert result.sink("encoder").label == "<global>"
    assert result.sink("encoder").stands_for == "the 2 global tokens Pegasus-X learns"


@pytest.mark.parametrize("arch", ["longt5 transient-global", "pegasus_x"])
def test_a_padded_row_with_keys_outside_the_text_is_captured_as_the_same_text_alone(tiny_models, arch):
    model, tokenizer = _transient_global_longt5(tiny_models) if arch.startswith("longt5") else tiny_models(arch)
    alone = capture(model, tokenizer, TEXT, decoder_text=DECODER_TEXT)
    texts, decoder_texts = [TEXT, TEXT + " and the wind blows cold"], [DECODER_TEXT, DECODER_TEXT]
    batch = capture(model, tokenizer, texts, row=0, decoder_text=decoder_texts)
    # LongT5 sums its block summaries over the longer padded row in another order: a few weights differ in the
    # fifth digit, from the model's own rounding (the tiny T5's logits run to the hundreds).
    np.testing.assert_allclose(batch.attention("encoder"), alone.attention("encoder"), atol=1e-4)
    for layer in range(alone.num_layers("encoder")):
        np.testing.assert_allclose(batch.sinks(layer, "encoder"), alone.sinks(layer, "encoder"), rtol=1e-4)
