"""The real all-MiniLM-L6-v2 (BERT, 6 layers x 12 heads) on a sentence pair."""

from __future__ import annotations

import numpy as np
import pytest

from attnwidget import capture
from conftest import eager_attentions, softmax_of_scores

FIRST, SECOND = "leaves fall in autumn", "autumn is marked by colorful foliage"


@pytest.fixture(scope="module")
def pair_capture(minilm):
    model, tokenizer = minilm
    return capture(model, tokenizer, FIRST, SECOND)


def test_tokens_of_the_pair(pair_capture):
    assert pair_capture.tokens == [
        "[CLS]", "leaves", "fall", "in", "autumn", "[SEP]",
        "autumn", "is", "marked", "by", "colorful", "foliage", "[SEP]",
    ]  # fmt: skip
    assert pair_capture.segment_b_start == 6
    assert pair_capture.special_tokens_mask == [i in (0, 5, 12) for i in range(13)]
    assert pair_capture.stacks == ("self",)
    assert pair_capture.attention().shape == (6, 12, 13, 13)


def test_invariant_holds_on_every_layer_and_head(pair_capture):
    attention = pair_capture.attention()
    for layer in range(6):
        np.testing.assert_allclose(softmax_of_scores(pair_capture, layer, "self"), attention[layer], atol=1e-4, rtol=0)
    assert pair_capture.scale == pytest.approx(32**-0.5)
    assert pair_capture.bias(0) is None, "one unpadded sequence through BERT has no additive term"


def test_attention_equals_eager_reference_although_loaded_with_sdpa(minilm, pair_capture):
    model, tokenizer = minilm
    assert model.config._attn_implementation == "sdpa"
    reference = eager_attentions(model, dict(tokenizer(FIRST, SECOND, return_tensors="pt")))["self"]
    np.testing.assert_allclose(pair_capture.attention(), reference[:, 0], atol=1e-6)
    assert model.config._attn_implementation == "sdpa"


def test_float16_storage_halves_the_attention(minilm, pair_capture):
    model, tokenizer = minilm
    half = capture(model, tokenizer, FIRST, SECOND, attention_dtype="float16")
    assert half.layer_attention(0).dtype == np.float16
    assert half.layer_attention(0).nbytes * 2 == pair_capture.layer_attention(0).nbytes
    np.testing.assert_allclose(half.attention(), pair_capture.attention(), atol=1e-3)



def test_a_400_token_capture_is_exact(minilm):
    """Long inputs run other matrix kernels than a sentence does; the capture must still be the model's own."""
    model, tokenizer = minilm
    words = "the leaves of the old oak fall slowly in autumn while children gather seeds".split()
    text = " ".join(words[i % len(words)] for i in range(398))  # one word piece each, plus [CLS] and [SEP]
    long = capture(model, tokenizer, text)
    assert len(long.tokens) == 400

    reference = eager_attentions(model, dict(tokenizer(text, return_tensors="pt")))["self"]
    np.testing.assert_allclose(long.attention(), reference[:, 0], atol=1e-6, rtol=0)
    for layer in range(long.num_layers()):
        np.testing.assert_allclose(softmax_of_scores(long, layer, "self"), reference[layer, 0], atol=1e-4, rtol=0)
