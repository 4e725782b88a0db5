"""Attention rollout (Abnar & Zuidema 2020) against hand-computed products, and its refusals."""

from __future__ import annotations

import numpy as np
import pytest

from attnwidget import AttentionWidget, capture
from attnwidget.capturing import Capture, LayerRecord, StackRecord, TokenSide

# Two layers of two heads over two tokens. Layer 0's head mean is [[1, 0], [1/2, 1/2]], so Â_0 = [[1, 0], [1/4, 3/4]];
# layer 1's is [[1/2, 1/2], [1, 0]], so Â_1 = [[3/4, 1/4], [1/2, 1/2]].
LAYER_0 = [[[1, 0], [1, 0]], [[1, 0], [0, 1]]]
LAYER_1 = [[[0, 1], [1, 0]], [[1, 0], [1, 0]]]


def two_layers() -> AttentionWidget:
    return AttentionWidget.from_attention(np.array([LAYER_0, LAYER_1], dtype=np.float32), ["a", "b"])


def test_two_layers_multiply_with_the_earliest_applied_first():
    # R = Â_1 · Â_0 = [[3/4 + 1/16, 3/16], [1/2 + 1/8, 3/8]]; the other order would give [[3/4, 1/4], [9/16, 7/16]].
    np.testing.assert_allclose(two_layers().capture.rollout(), [[13 / 16, 3 / 16], [5 / 8, 3 / 8]], rtol=0, atol=1e-15)


def test_through_one_layer_rollout_is_half_the_attention_plus_half_the_identity():
    widget = two_layers()
    np.testing.assert_array_equal(widget.capture.rollout(layer=0), [[1, 0], [1 / 4, 3 / 4]])
    # Sixteenths over four heads: every row sums to exactly 1, so renormalising changes nothing.
    attention = np.random.default_rng(0).multinomial(16, [1 / 5] * 5, size=(1, 4, 5)).astype(np.float32) / 16
    one = AttentionWidget.from_attention(attention, list("abcde")).capture
    np.testing.assert_array_equal(one.rollout(), 0.5 * attention[0].astype(np.float64).mean(axis=0) + 0.5 * np.eye(5))


def test_rows_a_sink_shortened_are_renormalised():
    head = np.array([[[0.5, 0.0], [0.25, 0.25]]], dtype=np.float32)  # half of each row went to the sink
    layer = LayerRecord(attention=head, sinks=np.zeros(1))
    side = TokenSide("input", ["a", "b"], ["a", "b"], [0, 1], [False, False])
    result = Capture([side], [StackRecord("self", "input", "input", [layer])])
    # 0.5·A + 0.5·I = [[3/4, 0], [1/8, 5/8]], each row divided by its sum.
    np.testing.assert_allclose(result.rollout(), [[1, 0], [1 / 6, 5 / 6]], rtol=0, atol=1e-15)


def test_minilm_rollout_rows_sum_to_one_and_cross_attention_is_refused(minilm):
    model, tokenizer = minilm
    result = capture(model, tokenizer, "the leaves of the old oak fall slowly in autumn")
    rollout = result.rollout()
    assert rollout.shape == (len(result.tokens),) * 2
    np.testing.assert_allclose(rollout.sum(axis=1), 1, rtol=0, atol=1e-12)
    assert (rollout >= 0).all()
    with pytest.raises(IndexError, match="layer 6 is out of range"):
        result.rollout(layer=6)
    seq2seq = AttentionWidget.from_attention(
        encoder_attention=np.full((1, 1, 2, 2), 0.5, dtype=np.float32),
        cross_attention=np.full((1, 1, 1, 2), 0.5, dtype=np.float32),
        encoder_tokens=["a", "b"], decoder_tokens=["<s>"],
    ).capture  # fmt: skip
    with pytest.raises(ValueError, match=r"stack 'cross' reads 'decoder' queries against 'input' keys; pick one of \['encoder'\]"):
        seq2seq.rollout("cross")
    np.testing.assert_allclose(seq2seq.rollout("encoder"), [[0.75, 0.25], [0.25, 0.75]])


def test_the_rollout_through_each_layer_comes_in_one_pass():
    from attnwidget.analysis.rollout import head_mean, rollout_by_layer

    result = two_layers().capture
    means = (head_mean(result.layer_attention(layer)) for layer in range(2))
    through = list(rollout_by_layer(means))
    np.testing.assert_array_equal(through[0], result.rollout(layer=0))
    np.testing.assert_array_equal(through[1], result.rollout())
