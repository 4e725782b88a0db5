"""Longformer and LED's encoder: a sliding window plus global tokens, captured as the dense map over the real tokens.

Windows of 2 and 4 tokens each side over 12 tokens, which the model pads to 16 inside; the reference is eager
`output_attentions` (a band per row, and the global tokens' rows apart) laid out densely by conftest.dense_from_band.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnwidget import capture
from conftest import CLS, MINILM_VOCAB, PAD, SEP, dense_from_band, model_state, softmax_of_scores

TEXT = "leaves fall in autumn and the old trees stand bare"  # 12 tokens
SHORT = "old trees stand bare"
WINDOWS = [4, 8]  # attention_window of each layer: w = 2 and 4 tokens each side
GLOBAL_TOKENS = [0, 5]  # the first token, and one inside the windows of others


def _longformer():
    from transformers import LongformerConfig, LongformerModel

    config = LongformerConfig(
        vocab_size=MINILM_VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        attention_window=WINDOWS, max_position_embeddings=64, pad_token_id=PAD, initializer_range=0.2,
    )  # fmt: skip
    torch.manual_seed(0)
    return LongformerModel(config).eval()


def _led():
    from transformers import LEDConfig, LEDForConditionalGeneration

    config = LEDConfig(
        vocab_size=MINILM_VOCAB, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, attention_window=WINDOWS,
        max_encoder_position_embeddings=64, max_decoder_position_embeddings=64, pad_token_id=PAD, bos_token_id=CLS,
        eos_token_id=SEP, decoder_start_token_id=SEP, init_std=0.2,
    )  # fmt: skip
    torch.manual_seed(0)
    return LEDForConditionalGeneration(config).eval()


def _global_mask(input_ids: torch.Tensor, tokens=GLOBAL_TOKENS) -> torch.Tensor:
    mask = torch.zeros_like(input_ids)
    mask[:, tokens] = 1
    return mask


def _eager_dense(bands, global_rows, global_tokens) -> np.ndarray:
    """[layers, heads, n, n] from eager's band layout of batch row 0."""
    return np.stack([
        dense_from_band(band[0], None if global_rows is None else global_rows[layer][0], global_tokens,
                        WINDOWS[layer] // 2).numpy()
        for layer, band in enumerate(bands)
    ])  # fmt: skip


def _assert_recorded_exactly(result, stack: str, expected: np.ndarray) -> None:
    captured = result.attention(stack)
    np.testing.assert_allclose(captured, expected, atol=1e-6)
    for layer in range(result.num_layers(stack)):
        np.testing.assert_allclose(softmax_of_scores(result, layer, stack), captured[layer], atol=1e-4)


@pytest.mark.parametrize("global_tokens", [GLOBAL_TOKENS, []], ids=["global tokens", "window only"])
def test_longformer_is_the_eager_map_laid_out_densely(minilm_tokenizer, global_tokens):
    model, tokenizer = _longformer(), minilm_tokenizer
    inputs = tokenizer(TEXT, return_tensors="pt")
    extra = {"global_attention_mask": _global_mask(inputs["input_ids"], global_tokens)} if global_tokens else {}
    with torch.no_grad():
        out = model(**inputs, **extra, output_attentions=True)

    result = capture(model, tokenizer, TEXT, model_inputs=extra or None)

    _assert_recorded_exactly(result, "self", _eager_dense(out.attentions, out.global_attentions, global_tokens))
    attention, n = result.attention("self"), len(inputs["input_ids"][0])
    assert attention.shape == (2, 4, n, n)  # the model's padding to 16 is gone
    distance = np.abs(np.subtract.outer(np.arange(n), np.arange(n)))
    local = np.ones((n, n), dtype=bool)
    local[global_tokens, :] = local[:, global_tokens] = False
    for layer, window in enumerate(WINDOWS):
        # A local row holds nothing beyond its window, and something on every key inside it and every global key.
        assert not attention[layer][:, local & (distance > window // 2)].any()
        assert (attention[layer][:, local & (distance <= window // 2)] > 0).all()
        assert (attention[layer][:, :, global_tokens] > 0).all() and (attention[layer][:, global_tokens] > 0).all()
    query, key = result.query_key(0, "self")
    # With global tokens each q and k is [local projection, global projection]: 2 x head_dim of 8.
    assert query.shape[-1] == key.shape[-1] == (16 if global_tokens else 8)


def test_a_padded_row_of_a_batch_is_its_text_alone(minilm_tokenizer):
    model, tokenizer = _longformer(), minilm_tokenizer
    batch = tokenizer([TEXT, SHORT], return_tensors="pt", padding=True)["input_ids"]
    alone = tokenizer(SHORT, return_tensors="pt")["input_ids"]

    in_batch = {"global_attention_mask": _global_mask(batch, [0])}
    result = capture(model, tokenizer, [TEXT, SHORT], row=1, model_inputs=in_batch)
    expected = capture(model, tokenizer, SHORT, model_inputs={"global_attention_mask": _global_mask(alone, [0])})

    assert result.attention("self").shape[-1] == alone.shape[1]
    np.testing.assert_allclose(result.attention("self"), expected.attention("self"), atol=1e-6)
    for layer in range(2):
        np.testing.assert_allclose(softmax_of_scores(result, layer, "self"), result.attention("self")[layer], atol=1e-4)


def test_led_encoder_decoder_and_cross_attention_are_eager(minilm_tokenizer):
    model, tokenizer = _led(), minilm_tokenizer
    inputs = tokenizer(TEXT, return_tensors="pt")
    extra = {"global_attention_mask": _global_mask(inputs["input_ids"])}

    result = capture(model, tokenizer, TEXT, decoder_text="bare trees", model_inputs=extra)
    decoder_ids = torch.tensor([result.sides["decoder"].token_ids])
    with torch.no_grad():
        out = model(**inputs, **extra, decoder_input_ids=decoder_ids, output_attentions=True, use_cache=False)

    encoder = _eager_dense(out.encoder_attentions, out.encoder_global_attentions, GLOBAL_TOKENS)
    _assert_recorded_exactly(result, "encoder", encoder)
    for stack, eager in (("decoder", out.decoder_attentions), ("cross", out.cross_attentions)):
        _assert_recorded_exactly(result, stack, torch.stack(eager)[:, 0].numpy())


@pytest.mark.parametrize("build", [_longformer, _led], ids=["longformer", "led"])
def test_model_is_left_as_it_was_even_when_its_forward_raises(minilm_tokenizer, build):
    model, tokenizer = build(), minilm_tokenizer
    options = {"decoder_text": "bare trees"} if build is _led else {}
    extra = {"global_attention_mask": _global_mask(tokenizer(TEXT, return_tensors="pt")["input_ids"])}
    model.train()
    before = model_state(model)
    capture(model, tokenizer, TEXT, model_inputs=extra, **options)
    assert model_state(model) == before

    last_layer = model.encoder.layer[1] if build is _longformer else model.led.encoder.layers[1]
    failing = last_layer.register_forward_hook(lambda *_: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        capture(model, tokenizer, TEXT, model_inputs=extra, **options)
    failing.remove()
    assert model_state(model) == before


def test_led_decodes_with_the_global_tokens_it_is_shown_with(minilm_tokenizer):
    """Without decoder_text the decoder reads the model's greedy output, which the global tokens change."""
    model, tokenizer = _led(), minilm_tokenizer
    inputs = {key: tokenizer(TEXT, return_tensors="pt")[key] for key in ("input_ids", "attention_mask")}
    extra = {"global_attention_mask": _global_mask(inputs["input_ids"])}
    with torch.no_grad():
        greedy = model.generate(**inputs, **extra, max_new_tokens=6, do_sample=False, num_beams=1)[0].tolist()
        without = model.generate(**inputs, max_new_tokens=6, do_sample=False, num_beams=1)[0].tolist()
    assert greedy != without

    result = capture(model, tokenizer, TEXT, model_inputs=extra, max_new_tokens=6)

    assert result.sides["decoder"].token_ids == greedy
