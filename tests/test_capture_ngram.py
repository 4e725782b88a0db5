"""ProphetNet: the encoder, the decoder's main stream and its cross-attention, recorded through module hooks.

Eager output_attentions returns ProphetNet's encoder and cross-attention scores before the softmax, and the
cross-attention rows of every stream; the capture holds the softmax the model uses, for the main stream's rows.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from attnwidget import capture
from attnwidget.capturing import IncompleteScoresWarning
from conftest import model_state, softmax_of_scores

TEXT = "leaves fall in autumn and the old trees stand bare"
DECODER_TEXT = "bare trees stand"


def test_prophetnet_main_stream_encoder_and_cross_attention_are_exact(tiny_models):
    model, tokenizer = tiny_models("prophetnet")  # two predicting streams besides the main one
    before = model_state(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error", IncompleteScoresWarning)
        result = capture(model, tokenizer, TEXT, decoder_text=DECODER_TEXT)
    assert model_state(model) == before

    n_input, n_decoder = len(result.tokens), len(result.sides["decoder"].tokens)
    with torch.no_grad():
        out = model(
            **tokenizer(TEXT, return_tensors="pt"),
            decoder_input_ids=torch.tensor([result.sides["decoder"].token_ids]),
            output_attentions=True,
            use_cache=False,
        )
    assert out.cross_attentions[0].shape[2] == 3 * n_decoder  # main and predicting streams' queries
    expected = {
        "encoder": [scores.softmax(-1) for scores in out.encoder_attentions],
        "decoder": list(out.decoder_attentions),
        "cross": [scores.softmax(-1)[:, :, :n_decoder] for scores in out.cross_attentions],
    }
    shapes = {"encoder": (n_input, n_input), "decoder": (n_decoder, n_decoder), "cross": (n_decoder, n_input)}
    for stack, maps in expected.items():
        attention = result.attention(stack)
        assert attention.shape == (2, 4, *shapes[stack])
        for layer, weights in enumerate(maps):
            np.testing.assert_allclose(attention[layer], weights[0].numpy(), atol=1e-6, rtol=0)
            np.testing.assert_allclose(softmax_of_scores(result, layer, stack), attention[layer], atol=1e-4, rtol=0)

    # The decoder's bias is its learned relative-position term plus the causal mask: it varies along a row.
    bias = result.bias(0, "decoder")
    last = n_decoder - 1
    assert np.isneginf(bias[:, 0, 1:]).all()
    assert np.ptp(bias[:, last, :], axis=-1).min() > 1e-3
