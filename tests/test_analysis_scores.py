"""Head scores (docs/analysis.md) against values computed by hand on constructed attention, and on the real MiniLM."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from attnwidget import AttentionWidget, capture
from attnwidget.analysis.scores import SCORES, head_scores
from attnwidget.capturing import Capture, LayerRecord, StackRecord, TokenSide

NEG = -np.inf


def entropy(*weights: float) -> float:
    return -sum(p * math.log(p) for p in weights if p > 0)


def side(n: int, name: str = "input") -> TokenSide:
    return TokenSide(name, [f"t{i}" for i in range(n)], [f"t{i}" for i in range(n)], list(range(n)), [False] * n)


CAUSAL_HEAD = np.array(
    [
        [1.0, 0.0, 0.0, 0.0],
        [0.8, 0.2, 0.0, 0.0],
        [0.1, 0.9, 0.0, 0.0],
        [0.2, 0.2, 0.6, 0.0],
    ]
)
CAUSAL_MASK = np.triu(np.full((4, 4), NEG), k=1)[None]  # one mask shared by every head, -inf above the diagonal


def causal_capture() -> Capture:
    uniform = np.tril(np.ones((4, 4))) / np.arange(1, 5)[:, None]
    layer = LayerRecord(attention=np.stack([CAUSAL_HEAD, uniform]).astype(np.float32), bias=CAUSAL_MASK)
    return Capture([side(4)], [StackRecord("self", "input", "input", [layer])])


def test_every_score_of_a_causal_head_equals_the_hand_computed_value():
    scores = causal_capture().head_scores().set_index("head").loc[0]
    rows = [entropy(1.0), entropy(0.8, 0.2), entropy(0.1, 0.9), entropy(0.2, 0.2, 0.6)]
    assert scores["entropy"] == pytest.approx(sum(rows) / 4)
    # Query i may see i + 1 keys; query 0 sees one, so it has nothing to normalise by and is left out.
    assert scores["entropy_normalised"] == pytest.approx(
        (rows[1] / math.log(2) + rows[2] / math.log(3) + rows[3] / math.log(4)) / 3
    )
    assert scores["previous_token"] == pytest.approx((0.8 + 0.9 + 0.6) / 3)
    assert scores["current_token"] == pytest.approx((1.0 + 0.2 + 0.0 + 0.0) / 4)
    assert scores["first_token"] == pytest.approx((1.0 + 0.8 + 0.1 + 0.2) / 4)
    assert scores["first_token_share"] == pytest.approx(2 / 4)  # rows 0 and 1 give token 0 more than 0.3
    # Weight per offset: 0 -> 1.2, -1 -> 2.3, -2 -> 0.3, -3 -> 0.2.
    assert scores["offset"] == -1
    assert scores["offset_share"] == pytest.approx(2.3 / 4)


def test_a_uniform_causal_head_has_normalised_entropy_one_and_offset_zero():
    scores = causal_capture().head_scores().set_index("head").loc[1]
    assert scores["entropy"] == pytest.approx(sum(math.log(k) for k in range(1, 5)) / 4)
    assert scores["entropy_normalised"] == pytest.approx(1.0)
    # Offset 0 gets 1 + 1/2 + 1/3 + 1/4; offset -1 gets 1/2 + 1/3 + 1/4.
    assert scores["offset"] == 0
    assert scores["offset_share"] == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 4) / 4)


def test_the_table_has_one_row_per_stack_layer_and_head_and_the_documented_columns():
    frame = causal_capture().head_scores()
    assert list(frame.columns) == ["stack", "layer", "head", *SCORES]
    assert list(zip(frame["stack"], frame["layer"], frame["head"])) == [("self", 0, 0), ("self", 0, 1)]
    assert str(frame["offset"].dtype) == "Int64"


def test_a_choice_of_stacks_and_layers_scores_those_alone_and_a_wrong_one_is_refused():
    widget = AttentionWidget.from_attention(np.full((3, 2, 2, 2), 0.5, dtype=np.float32), ["a", "b"])
    frame = widget.head_scores(layers=[2, 0])
    assert list(zip(frame["layer"], frame["head"])) == [(2, 0), (2, 1), (0, 0), (0, 1)]
    with pytest.raises(IndexError, match="layer 3 is out of range"):
        widget.head_scores(layers=[3])
    with pytest.raises(KeyError, match="no attention stack 'cross'"):
        widget.head_scores(stacks=["cross"])


def test_without_a_mask_a_key_is_visible_when_its_weight_is_above_zero():
    # Tensors given by hand carry no mask: the keys a query may see are those it gives weight to.
    widget = AttentionWidget.from_attention(CAUSAL_HEAD[None, None].astype(np.float32), ["a", "b", "c", "d"])
    scores = widget.head_scores().loc[0]
    rows = [entropy(0.8, 0.2) / math.log(2), entropy(0.1, 0.9) / math.log(2), entropy(0.2, 0.2, 0.6) / math.log(3)]
    assert scores["entropy_normalised"] == pytest.approx(sum(rows) / 3)


def test_a_key_the_mask_leaves_open_counts_as_visible_although_its_weight_rounded_to_zero():
    head = np.array([[1.0, 0.0], [1.0, 0.0]])
    open_mask = np.zeros((2, 2))
    assert head_scores(head, same_side=True, bias=open_mask)["entropy_normalised"] == 0.0  # 0 / ln 2, both rows
    assert math.isnan(head_scores(head, same_side=True)["entropy_normalised"])  # one visible key each: no rows


def test_a_sink_is_one_more_outcome_and_one_more_visible_key_but_no_token():
    head = np.array([[0.5, 0.0], [0.25, 0.25]], dtype=np.float32)  # the rest of each row went to the sink
    layer = LayerRecord(attention=head[None], bias=np.triu(np.full((2, 2), NEG), k=1)[None], sinks=np.zeros(1))
    scores = Capture([side(2)], [StackRecord("self", "input", "input", [layer])]).head_scores().loc[0]
    assert scores["entropy"] == pytest.approx((entropy(0.5, 0.5) + entropy(0.25, 0.25, 0.5)) / 2)
    assert scores["entropy_normalised"] == pytest.approx(
        (entropy(0.5, 0.5) / math.log(2) + entropy(0.25, 0.25, 0.5) / math.log(3)) / 2
    )
    assert scores["first_token"] == pytest.approx((0.5 + 0.25) / 2)  # the sink's weight is not the first token's
    assert scores["offset"] == 0 and scores["offset_share"] == pytest.approx((0.5 + 0.25) / 2)


def test_a_query_with_no_weight_counts_for_nothing():
    head = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])  # the last query may see nothing
    scores = head_scores(head, same_side=True)
    assert scores["first_token"] == pytest.approx((0.5 + 1.0) / 2)
    assert scores["current_token"] == pytest.approx(0.5 / 2)
    assert scores["previous_token"] == pytest.approx(1.0)  # row 1 only: row 2 holds no weight


def test_cross_attention_has_no_position_scores_and_every_stack_gets_rows():
    encoder = np.full((1, 1, 3, 3), 1 / 3, dtype=np.float32)
    decoder = np.tril(np.ones((2, 2), dtype=np.float32)) / np.array([[1], [2]], dtype=np.float32)
    cross = np.array([[[[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]]], dtype=np.float32)
    widget = AttentionWidget.from_attention(
        encoder_attention=encoder, decoder_attention=decoder[None, None], cross_attention=cross,
        encoder_tokens=["a", "b", "c"], decoder_tokens=["<s>", "x"],
    )  # fmt: skip
    frame = widget.head_scores().set_index("stack")
    assert list(frame.index) == ["encoder", "decoder", "cross"]
    crossing = frame.loc["cross"]
    for name in ("previous_token", "current_token", "offset", "offset_share"):
        assert pd.isna(crossing[name]), name
    assert crossing["first_token"] == pytest.approx((0.7 + 0.1) / 2)
    assert crossing["first_token_share"] == pytest.approx(1 / 2)
    assert crossing["entropy"] == pytest.approx((entropy(0.7, 0.2, 0.1) + entropy(0.1, 0.1, 0.8)) / 2)
    assert frame.loc["decoder", "previous_token"] == pytest.approx(0.5)
    assert frame.loc["encoder", "entropy_normalised"] == pytest.approx(1.0)


def test_a_head_scores_the_same_read_in_blocks_of_rows(monkeypatch):
    from attnwidget.analysis import scores as module

    rng = np.random.default_rng(0)
    head = rng.random((37, 37)) * np.tri(37)
    head /= head.sum(axis=1, keepdims=True)
    whole = head_scores(head, same_side=True)
    monkeypatch.setattr(module, "ROW_BLOCK_VALUES", 37 * 5)  # 5 rows a block, the last one shorter
    assert head_scores(head, same_side=True) == pytest.approx(whole)


def test_minilm_scores_agree_with_the_attention_and_name_its_previous_token_heads(minilm):
    model, tokenizer = minilm
    result = capture(model, tokenizer, "the leaves of the old oak fall slowly in autumn while children gather seeds")
    frame = result.head_scores()
    assert len(frame) == 6 * 12
    attention = result.attention().astype(np.float64)  # [layers, heads, n, n]
    n = attention.shape[-1]
    previous = attention[:, :, np.arange(1, n), np.arange(n - 1)].mean(axis=-1).ravel()
    np.testing.assert_allclose(frame["previous_token"], previous, rtol=1e-6)
    np.testing.assert_allclose(frame["first_token"], attention[..., 0].mean(axis=-1).ravel(), rtol=1e-6)
    assert frame["entropy_normalised"].between(0, 1 + 1e-9).all()
    # A head whose strongest offset is -1 is one that gives most of its weight to the previous token.
    followers = frame[frame["offset"] == -1]
    assert len(followers) > 0
    assert (followers["previous_token"] > frame["previous_token"].median()).all()


def test_scoring_a_long_capture_shows_a_bar_over_its_layers_unless_told_not_to(monkeypatch, capsys):
    from attnwidget.capturing import progress

    monkeypatch.setattr(progress, "PROGRESS_MIN_SCORES", 32)  # this capture's 2 heads x 4 x 4 scores pass it
    causal_capture().head_scores(progress=False)
    assert "scoring heads" not in capsys.readouterr().err
    causal_capture().head_scores()
    assert "scoring heads" in capsys.readouterr().err
