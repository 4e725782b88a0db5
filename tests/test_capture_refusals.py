"""Attention with no exact token × token softmax map is refused, with what the model computes and what to do
instead; the model is left as it was. Each message is worded for what eager output_attentions gives: maps (pass
them to AttentionWidget.from_attention) or none (the model has no attention weights)."""

from __future__ import annotations

import pytest
import torch

from attnwidget import capture
from conftest import model_state, rebuilt

TEXT = "leaves fall in autumn and the old trees stand bare"  # 12 tokens


def _refusal(model, tokenizer) -> str:
    before = model_state(model)
    with pytest.raises(ValueError) as refused:
        capture(model, tokenizer, TEXT)
    assert model_state(model) == before
    return str(refused.value)


def test_yoso_has_no_attention_weights(tiny_models):
    model, tokenizer = tiny_models("yoso")
    message = _refusal(model, tokenizer)
    assert "has no attention" in message and "hash" in message
    with torch.no_grad():  # what eager calls its attentions are the layers' output vectors, not maps
        out = model(**tokenizer(TEXT, return_tensors="pt"), output_attentions=True)
    assert out.attentions[0].shape == out.last_hidden_state.shape


def test_mra_approximates_attention_and_forms_no_weights(minilm_tokenizer):
    from transformers import MraConfig, MraForMaskedLM

    config = MraConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                       intermediate_size=64, max_position_embeddings=128)  # fmt: skip
    model = MraForMaskedLM(config).eval()
    message = _refusal(model, minilm_tokenizer)
    assert message.startswith("MRA has no attention weights to show: it approximates softmax attention")
    assert "AttentionWidget.from_attention" in message
    with torch.no_grad():
        out = model(**minilm_tokenizer(TEXT, return_tensors="pt"), output_attentions=True)
    assert not out.attentions  # eager has nothing to show either


def test_nystromformer_with_landmarks_is_approximate(tiny_models):
    model, tokenizer = tiny_models("nystromformer")
    model = rebuilt(model, num_landmarks=4)  # 4 landmarks for 16 positions
    message = _refusal(model, tokenizer)
    assert "4 landmarks" in message and "approximate" in message
    assert "num_landmarks equal to segment_means_seq_len (16)" in message
    assert "AttentionWidget.from_attention" in message
    # It runs at its 16 positions only (and only without padding).
    inputs = tokenizer(f"{TEXT} for all to see", truncation=True, max_length=16, return_tensors="pt")
    with torch.no_grad():  # eager's maps weigh the landmarks, not the tokens
        out = model(**inputs, output_attentions=True)
    assert out.attentions[0].shape == (1, 4, 16, 4)


def test_funnel_that_pools_between_blocks_is_refused(tiny_models):
    model, tokenizer = tiny_models("funnel")
    model = rebuilt(model, block_sizes=[1, 1])
    message = _refusal(model, tokenizer)
    assert "pools the sequence between its 2 blocks" in message
    assert "output_attentions[:1]" in message and "AttentionWidget.from_attention" in message
