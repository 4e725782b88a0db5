"""Encoders that attend in blocks: LongT5's local attention is captured as a band over the tokens, exactly;
LongT5's transient-global attention and Pegasus-X's global tokens are refused, saying why and what to do."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from attnwidget import capture
from attnwidget.capturing import capture_from_attention
from conftest import eager_attentions, longt5_local_as_dense, softmax_of_scores

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


def test_longt5_transient_global_is_refused_saying_why(tiny_models):
    model, tokenizer = tiny_models("longt5")
    config = copy.deepcopy(model.config)
    config.encoder_attention_type = "transient-global"
    torch.manual_seed(0)
    model = type(model)(config).eval()
    with pytest.raises(ValueError, match="transient-global") as refusal:
        capture(model, tokenizer, TEXT, decoder_text=DECODER_TEXT)
    assert "summary of every global_block_size tokens" in str(refusal.value)
    assert "AttentionWidget.from_attention(decoder_attention=" in str(refusal.value)
    _assert_untouched(model)


def test_pegasus_x_is_refused_saying_why(tiny_models):
    from transformers import PegasusXConfig, PegasusXForConditionalGeneration

    _, tokenizer = tiny_models("bert")
    config = PegasusXConfig(
        vocab_size=30522, d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, block_size=4, num_global_tokens=2,
        pad_token_id=0, decoder_start_token_id=102, eos_token_id=102,
    )  # fmt: skip
    model = PegasusXForConditionalGeneration._from_config(config, attn_implementation="eager").eval()
    with pytest.raises(ValueError, match="global tokens") as refusal:
        capture(model, tokenizer, TEXT, decoder_text=DECODER_TEXT)
    assert "AttentionWidget.from_attention(decoder_attention=" in str(refusal.value)
    _assert_untouched(model)

    # What the message says to do instead shows the decoder.
    encoding = tokenizer(TEXT, return_tensors="pt")
    decoder_ids = [102, *tokenizer(text_target=DECODER_TEXT)["input_ids"]]
    with torch.no_grad():
        out = model(**encoding, decoder_input_ids=torch.tensor([decoder_ids]), output_attentions=True)
    shown = capture_from_attention(
        decoder_attention=out.decoder_attentions,
        cross_attention=out.cross_attentions,
        encoder_tokens=tokenizer.convert_ids_to_tokens(encoding["input_ids"][0]),
        decoder_tokens=tokenizer.convert_ids_to_tokens(decoder_ids),
    )
    assert shown.stacks == ("decoder", "cross")
