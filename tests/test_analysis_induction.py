"""Induction and duplicate-token scores (docs/analysis.md): hand-computed on a constructed map, the documented recipe
against an eager forward pass, the model left as it was, and what the real MiniLM's duplicate-token heads do."""

from __future__ import annotations

import gc

import numpy as np
import pytest
import torch
from conftest import eager_attentions, model_state

import attnwidget
from attnwidget import AttentionWidget, capture
from attnwidget.analysis.induction import repeat_scores


def test_repeat_scores_of_a_constructed_map():
    # A start token, then R = (x, y) twice: the second copy is positions 3 and 4.
    attention = np.zeros((5, 5))
    attention[3, [2, 1, 0]] = [0.6, 0.3, 0.1]  # x again: after-the-earlier-x is 2, the earlier x is 1
    attention[4, [3, 2, 0]] = [0.5, 0.2, 0.3]  # y again: 3 and 2
    assert repeat_scores(attention, start=1, period=2) == pytest.approx(
        {"induction": (0.6 + 0.5) / 2, "duplicate_token": (0.3 + 0.2) / 2}
    )


def ordinary_ids(tokenizer, model) -> np.ndarray:
    """The documented pool of random tokens: ids the model embeds, without special or added tokens."""
    excluded = set(tokenizer.all_special_ids) | set(tokenizer.added_tokens_decoder)
    size = min(len(tokenizer), model.get_input_embeddings().num_embeddings)
    return np.array([token_id for token_id in range(size) if token_id not in excluded])


def test_a_decoder_is_scored_by_the_documented_recipe_and_left_as_it_was(tiny_models):
    model, tokenizer = tiny_models("llama", attn_implementation=None)  # sdpa, as a user would load it
    before = model_state(model)
    frame = attnwidget.induction_scores(model, tokenizer, seq_len=7, batches=2, seed=3)
    assert model_state(model) == before
    assert list(frame.columns) == ["stack", "layer", "head", "induction", "duplicate_token"]
    assert len(frame) == 2 * 4

    rng = np.random.default_rng(3)
    expected = np.zeros((2, 4, 2))
    for _ in range(2):
        repeated = list(rng.choice(ordinary_ids(tokenizer, model), size=7, replace=False)) * 2
        ids = torch.tensor([[model.config.bos_token_id, *repeated]])  # the tiny Llama's BOS, as its config says
        attention = eager_attentions(model, {"input_ids": ids})["self"][:, 0]  # [layers, heads, 15, 15]
        rows = np.arange(8, 15)
        expected[..., 0] += attention[:, :, rows, rows - 6].mean(axis=-1) / 2
        expected[..., 1] += attention[:, :, rows, rows - 7].mean(axis=-1) / 2
    np.testing.assert_allclose(frame[["induction", "duplicate_token"]].to_numpy(), expected.reshape(8, 2), atol=1e-6)


def test_an_encoder_decoder_scores_its_encoder_and_decoder_not_cross_attention(tiny_models):
    model, tokenizer = tiny_models("t5")
    frame = attnwidget.induction_scores(model, tokenizer, seq_len=5, batches=1)
    assert sorted(set(frame["stack"])) == ["decoder", "encoder"]
    assert frame[["induction", "duplicate_token"]].notna().all().all()


def test_the_widget_runs_the_model_it_was_built_from_while_the_user_holds_it(tiny_models):
    model, tokenizer = tiny_models("llama")
    widget = AttentionWidget(model, "the leaves fall", tokenizer)
    from_widget = widget.induction_scores(seq_len=6, batches=1, seed=1)
    direct = attnwidget.induction_scores(model, tokenizer, seq_len=6, batches=1, seed=1)
    np.testing.assert_array_equal(from_widget.to_numpy(), direct.to_numpy())
    del model
    gc.collect()
    with pytest.raises(ValueError, match=r"holds no model .* attnwidget.induction_scores\(model, tokenizer\)"):
        widget.induction_scores()
    tensors = AttentionWidget.from_attention(np.full((1, 1, 2, 2), 0.5, dtype=np.float32), ["a", "b"])
    with pytest.raises(ValueError, match="holds no model"):
        tensors.induction_scores()


def test_bad_lengths_are_refused(tiny_models):
    model, tokenizer = tiny_models("llama")
    for options in ({"seq_len": 1}, {"batches": 0}, {"seq_len": True}):
        with pytest.raises(ValueError, match="must be an integer of at least"):
            attnwidget.induction_scores(model, tokenizer, **options)


def test_minilm_duplicate_token_heads_look_back_at_a_repeated_word_in_real_text(minilm):
    model, tokenizer = minilm
    frame = attnwidget.induction_scores(model, tokenizer)
    assert frame[["induction", "duplicate_token"]].stack().between(0, 1).all()
    top = frame.loc[frame["duplicate_token"].idxmax()]
    # In a sentence, the head found on random tokens is one of the three of 72 whose second "garden" looks back
    # at the first the most.
    result = capture(model, tokenizer, "my garden is green and your garden is dry")
    later, earlier = [i for i, token in enumerate(result.tokens) if token == "garden"][::-1][:2]
    attention = result.attention()[:, :, later, earlier]
    assert attention[top["layer"], top["head"]] >= np.sort(attention.ravel())[-3]
