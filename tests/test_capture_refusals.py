"""Attention with no exact token × token softmax map is refused, with what the model computes and what to do
instead; the model is left as it was. Each message is worded for what eager output_attentions gives: maps (pass
them to AttentionWidget.from_attention) or none (the model has no attention weights)."""

from __future__ import annotations

import warnings

import pytest
import torch

from attnwidget import capture
from test_capture_model_state import model_state

TEXT = "leaves fall in autumn and the old trees stand bare"  # 12 tokens


def _refusal(model, tokenizer, text=TEXT) -> str:
    before = model_state(model)
    with pytest.raises(ValueError) as refused, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Input ids are automatically padded")
        capture(model, tokenizer, text)
    assert model_state(model) == before  # the refusing pre-hooks are gone too
    return str(refused.value)


def _rebuilt(tiny_models, arch: str, **changes):
    model, tokenizer = tiny_models(arch)
    config = model.config
    config.update(changes)
    torch.manual_seed(0)
    return type(model)(config).eval(), tokenizer


def test_yoso_has_no_attention_weights(tiny_models):
    model, tokenizer = tiny_models("yoso")
    message = _refusal(model, tokenizer)
    assert "has no attention" in message and "hash" in message
    with torch.no_grad():  # what eager calls its attentions are the layers' output vectors, not maps
        out = model(**tokenizer(TEXT, return_tensors="pt"), output_attentions=True)
    assert out.attentions[0].shape == out.last_hidden_state.shape


def test_nystromformer_with_landmarks_is_approximate(tiny_models):
    model, tokenizer = _rebuilt(tiny_models, "nystromformer", num_landmarks=4)  # 4 landmarks for 16 positions
    message = _refusal(model, tokenizer)
    assert "4 landmarks" in message and "approximate" in message
    assert "num_landmarks equal to segment_means_seq_len (16)" in message
    assert "AttentionWidget.from_attention" in message


def test_reformer_lsh_over_several_chunks_is_refused_and_a_shorter_text_is_recorded(tiny_models):
    model, tokenizer = _rebuilt(tiny_models, "reformer", lsh_attn_chunk_length=4)  # 12 tokens: 3 chunks of 4
    message = _refusal(model, tokenizer)
    assert "more than 4 positions" in message and "buckets" in message
    assert "AttentionWidget.from_attention" in message
    result = capture(model, tokenizer, "bare trees")  # [CLS] bare trees [SEP]: one chunk
    assert result.attention().shape == (2, 4, 4, 4)


def test_funnel_that_pools_between_blocks_is_refused(tiny_models):
    model, tokenizer = _rebuilt(tiny_models, "funnel", block_sizes=[1, 1])
    message = _refusal(model, tokenizer)
    assert "pools the sequence between its 2 blocks" in message
    assert "output_attentions[:1]" in message and "AttentionWidget.from_attention" in message
