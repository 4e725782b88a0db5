"""Comparing two runs (`AttentionWidget.compare`): A − B over the same tokens, the Jensen–Shannon ranking, signed
chunks, thumbnails, tiles and top keys, side by side over different tokens, and the refusals."""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest
import torch
from conftest import build_tiny, make_capture, make_seq2seq_capture, token_side

from attnwidget import AttentionWidget, capture, wire
from attnwidget.analysis.divergence import js_distance
from attnwidget.capturing import Capture, LayerRecord, StackRecord
from attnwidget.capturing import comparing
from attnwidget.comparison import Comparison

pytestmark = pytest.mark.usefixtures("recording_comm")

TEXT = "the cat sat on the mat because the cat was tired"


def perturbed(model, layer: int, seed: int = 1):
    """A copy of `model` whose `layer`'s query projection has noise added: it attends differently from that layer."""
    other = copy.deepcopy(model)
    projection = _query_projections(other)[layer]
    with torch.no_grad():
        generator = torch.Generator().manual_seed(seed)
        projection.weight.add_(torch.randn(projection.weight.shape, generator=generator) * projection.weight.std() * 2)
    return other


def _query_projections(model) -> list[torch.nn.Linear]:
    return [module for name, module in model.named_modules() if re.search(r"(q_proj|attention\.self\.query)$", name)]


def _signed_heads(w, stack):
    return [(layer, head) for layer in range(w.capture.num_layers(stack)) for head in range(w.capture.num_heads(stack))]


# -- Jensen–Shannon distance, by hand ------------------------------------------------------------------
def test_js_distance_matches_hand_computed_values():
    assert js_distance(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])) == pytest.approx(1.0)
    # M = (0.75, 0.25): KL(a‖M) = 0.5 log2(2/3) + 0.5 log2 2, KL(b‖M) = log2(4/3); JS = their mean.
    expected = np.sqrt((0.5 * np.log2(2 / 3) + 0.5 + np.log2(4 / 3)) / 2)
    assert js_distance(np.array([[0.5, 0.5]]), np.array([[1.0, 0.0]])) == pytest.approx(expected)
    # With a sink, what the row leaves of 1 is one more key: (0.5 | 0.5) against (1.0 | 0).
    assert js_distance(np.array([[0.5]]), np.array([[1.0]]), has_sink=True) == pytest.approx(expected)
    # The mean over rows; a row with no weight in either map counts for nothing.
    two = js_distance(np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 0.0]]), np.array([[0.0, 1.0], [0.5, 0.5], [0.0, 0.0]]))
    assert two == pytest.approx(0.5)
    assert js_distance(np.eye(3), np.eye(3)) == 0.0


# -- same tokens: A − B ----------------------------------------------------------------------------------
def test_identical_models_differ_by_exactly_zero_everywhere_and_rank_nothing(minilm_tokenizer):
    model = build_tiny("llama")
    a, b = (capture(m, minilm_tokenizer, TEXT, progress=False) for m in (model, copy.deepcopy(model)))

    w = AttentionWidget.compare(a, b)

    assert w.capture.stacks == ("A-B:self", "A:self", "B:self")
    assert (w.stack, w.view, w.score) == ("A-B:self", "matrix", "js_distance")
    for layer, head in _signed_heads(w, "A-B:self"):
        assert not w.capture.head_attention(layer, head, "A-B:self").any()
        chunk, shape = wire.head_chunk(w.capture, "A-B:self", layer, head)
        assert set(chunk) == {0} and shape == [len(a.tokens)] * 2  # the bytes the browser decodes: all 0
    assert not any(wire.all_thumbnails(w.capture)[wire.chunk_key("A-B:self", layer)].strip(b"\0") for layer in (0, 1))
    assert (w.compare_scores()["js_distance"] == 0).all()
    assert len(w.compare_scores()) == 2 * 4


def test_a_perturbed_layer_tops_the_ranking_and_the_difference_is_a_minus_b(minilm_tokenizer):
    model = build_tiny("llama")
    a = capture(model, minilm_tokenizer, TEXT, progress=False)
    b = capture(perturbed(model, layer=1), minilm_tokenizer, TEXT, progress=False)

    w = AttentionWidget.compare(a, b, names=("base", "tuned"))

    ranking = w.compare_scores()
    assert ranking["stack"].eq("base-tuned:self").all()
    assert ranking.iloc[0]["layer"] == 1 and ranking.iloc[0]["js_distance"] > 0.05
    assert (ranking[ranking["layer"] == 0]["js_distance"] == 0).all()  # a causal model: layer 0 is untouched
    difference = w.capture.head_attention(1, 2, "base-tuned:self")
    np.testing.assert_array_equal(difference, a.head_attention(1, 2) - b.head_attention(1, 2))
    assert difference.min() < -0.01 and difference.max() > 0.01
    decoded, _ = wire.split_head_chunk(*wire.head_chunk(w.capture, "base-tuned:self", 1, 2), has_sinks=False, signed=True)
    np.testing.assert_allclose(decoded, difference, atol=1 / 254 + 1e-7)
    # The page's atlas ranks the difference stack's heads by the same numbers.
    scores = w.meta["head_scores"]
    column = [score["name"] for score in scores["scores"]].index("js_distance")
    page = [[head[column] for head in layer] for layer in scores["values"]["base-tuned:self"]]
    assert page[1][2] == pytest.approx(ranking.set_index(["layer", "head"]).loc[(1, 2), "js_distance"])
    assert all(head[column] is None for layer in scores["values"]["base:self"] for head in layer)
    meta = {stack["name"]: stack for stack in w.meta["stacks"]}
    assert meta["base-tuned:self"]["signed"] and meta["base-tuned:self"]["difference_of"] == ["base:self", "tuned:self"]
    assert not meta["base:self"]["signed"] and meta["base:self"]["difference_of"] is None


def test_the_real_minilm_compared_with_a_copy_perturbed_in_layer_3(minilm):
    model, tokenizer = minilm
    a = capture(model, tokenizer, TEXT, progress=False)
    same = AttentionWidget.compare(a, capture(copy.deepcopy(model), tokenizer, TEXT, progress=False))
    assert (same.compare_scores()["js_distance"] == 0).all()

    w = AttentionWidget.compare(a, capture(perturbed(model, layer=3), tokenizer, TEXT, progress=False))

    ranking = w.compare_scores()
    assert ranking.iloc[0]["layer"] == 3
    assert (ranking[ranking["layer"] < 3]["js_distance"] == 0).all()
    assert len(ranking) == 6 * 12


def test_widgets_with_rollout_and_word_stacks_compare_by_what_they_recorded(minilm_tokenizer):
    model = build_tiny("llama")
    runs = (capture(m, minilm_tokenizer, TEXT, progress=False) for m in (model, perturbed(model, 1)))
    a, b = (AttentionWidget.from_capture(run) for run in runs)
    assert "self·rollout" in a.capture.stacks  # the runs' widgets show derived stacks
    w = AttentionWidget.compare(a, b)
    assert w.capture.stacks == ("A-B:self", "A:self", "B:self")
    assert all(side.words_of is None for side in w.capture.sides.values())
    assert AttentionWidget.compare(a, b, derived=True).capture.stack("A:self·rollout").derivation is not None


def test_signed_thumbnails_keep_the_sign_of_the_largest_magnitude():
    block = np.zeros((128, 128), dtype=np.float32)
    block[0, 0], block[1, 1] = 0.3, -0.5  # one 2 × 2 pixel: -0.5 is the stronger
    block[2, 2] = 0.25  # alone in its pixel
    thumbnail = wire.thumbnail(block, signed=True)
    assert thumbnail.dtype == np.int8
    assert thumbnail[0, 0] == round(-0.5 * 127) and thumbnail[1, 1] == round(0.25 * 127)
    assert not thumbnail[2:].any() and not thumbnail[:, 2:].any()


def _signed_capture(difference: np.ndarray) -> Capture:
    side = token_side("input", difference.shape[-1])
    stacks = [StackRecord("A-B:self", "input", "input", [LayerRecord(difference)], difference_of=("A:self", "B:self"))]
    return Capture([side], stacks)


def test_signed_tiles_pool_by_magnitude_and_report_peak_magnitudes():
    difference = np.zeros((1, 4, 4), dtype=np.float32)
    difference[0, 0, 0], difference[0, 1, 1], difference[0, 2, 3] = 0.2, -0.6, 0.1
    signed = _signed_capture(difference)
    tile = np.frombuffer(wire.head_tile(signed, wire.Tile("A-B:self", 0, 0, 0, 4, 0, 4, 2, 2, "max")), dtype="<f4")
    peak, past_first, cells, row_peaks = tile[0], tile[1], tile[2:6].reshape(2, 2), tile[6:8]
    assert peak == pytest.approx(0.6) and past_first == pytest.approx(0.6)
    np.testing.assert_allclose(cells, [[-0.6, 0.0], [0.0, 0.1]])
    np.testing.assert_allclose(row_peaks, [0.6, 0.1])
    mean = np.frombuffer(wire.head_tile(signed, wire.Tile("A-B:self", 0, 0, 0, 4, 0, 4, 2, 2, "mean")), dtype="<f4")
    assert mean[2] == pytest.approx((0.2 - 0.6) / 4)


def test_signed_top_keys_are_the_keys_of_largest_magnitude():
    difference = np.zeros((1, 3, 3), dtype=np.float32)
    difference[0, 0] = [0.1, -0.4, 0.2]
    data, shape = wire.head_top_keys(_signed_capture(difference), "A-B:self", 0, 0, 2)
    keys, weights = wire.split_top_keys(data, shape, n_key=3, signed=True)
    assert keys[0].tolist() == [1, 2]
    np.testing.assert_allclose(weights[0], [-0.4, 0.2], atol=1 / 254)


def test_scores_and_rollout_of_attention_leave_the_difference_out():
    w = AttentionWidget.compare(make_capture(seed=0), make_capture(seed=1))
    assert set(w.head_scores()["stack"]) == {"A:self", "B:self"}
    with pytest.raises(ValueError, match=r"'A-B:self' holds differences of attention.*compare_scores"):
        w.capture.head_scores(stacks=["A-B:self"])
    with pytest.raises(ValueError, match=r"roll out each run's own stack \('A:self' and 'B:self'\)"):
        w.capture.rollout("A-B:self")
    with pytest.raises(ValueError, match=r"shows one run; build one with AttentionWidget.compare"):
        AttentionWidget.from_capture(make_capture()).compare_scores()


def test_a_compared_export_holds_the_signed_stacks():
    w = AttentionWidget.compare(make_capture(seed=0), make_capture(seed=1))
    page = w.to_html(size_budget=None)
    assert '"signed":true' in page and '"difference_of":["A:self","B:self"]' in page
    assert '"A-B:self/1/2"' in page  # every head of the difference in the page


# -- refusals ----------------------------------------------------------------------------------------------
def test_runs_that_cannot_be_subtracted_are_refused_saying_why():
    with pytest.raises(ValueError, match=r"stack 'self': A has 2 layers and B has 3 layers.*layers=\[\.\.\.\]"):
        AttentionWidget.compare(make_capture(layers=2), make_capture(layers=3))
    with pytest.raises(ValueError, match=r"stack 'self': A has 3 heads and B has 4 heads"):
        AttentionWidget.compare(make_capture(heads=3), make_capture(heads=4))
    decoder_only = make_capture()
    encoder = decoder_only.stack("self")
    as_encoder = Capture([decoder_only.input_side], [StackRecord("encoder", "input", "input", encoder.layers)])
    with pytest.raises(ValueError, match=r"A has stacks \['self'\] and B has \['encoder'\]; only runs of the same kind"):
        AttentionWidget.compare(decoder_only, as_encoder)
    with pytest.raises(ValueError, match=r"names must be two different non-empty strings"):
        AttentionWidget.compare(make_capture(), make_capture(), names=("x", "x"))
    with pytest.raises(ValueError, match=r"cannot hold ':' or '/'"):
        AttentionWidget.compare(make_capture(), make_capture(), names=("a:1", "b"))
    with pytest.raises(TypeError, match=r"argument b must be a capture .* or an AttentionWidget, not str"):
        AttentionWidget.compare(make_capture(), "model")


def test_a_difference_over_the_memory_limit_is_refused_with_how_to_compare_fewer_layers(monkeypatch):
    monkeypatch.setattr(comparing, "MAX_DIFFERENCE_BYTES", 400)  # 2 layers of 3 heads x 5 x 5 float32: 600 bytes
    with pytest.raises(ValueError, match=r"compare about 1 layers at a time \(compare\(a, b, layers=\[0, 1, \.\.\.\]\)\)"):
        AttentionWidget.compare(make_capture(seed=0), make_capture(seed=1))
    w = AttentionWidget.compare(make_capture(seed=0), make_capture(seed=1), layers=[1])
    assert w.capture.num_layers("A-B:self") == 1
    np.testing.assert_array_equal(
        w.capture.head_attention(0, 0, "A:self"), make_capture(seed=0).head_attention(1, 0)
    )


# -- different tokens: side by side ------------------------------------------------------------------------
def test_runs_over_different_tokens_are_shown_side_by_side_with_linked_selection():
    left = AttentionWidget.from_capture(make_capture(layers=3, tokens=5, seed=0))
    right = AttentionWidget.from_capture(make_capture(layers=2, tokens=7, seed=1))

    both = AttentionWidget.compare(left, right, names=("short", "long"))

    assert isinstance(both, Comparison) and (both.left, both.right) == (left, right)
    left.layer, left.head, left.view = 1, 2, "matrix"
    assert (right.layer, right.head, right.view) == (1, 2, "matrix")
    left.layer = 2  # the right run has no layer 2: it stays where it was
    assert right.layer == 1
    left.token = 3  # 5 tokens against 7: an index names another word, so it is not followed
    assert right.token is None and "token" not in both.linked
    right.head = 0
    assert left.head == 0


def test_side_by_side_links_the_token_when_the_token_counts_match():
    left, right = (AttentionWidget.from_capture(make_capture(tokens=5, seed=seed)) for seed in (0, 1))
    side = right.capture.sides["input"]
    right.capture._sides["input"] = type(side)("input", side.tokens, side.raw_tokens, [9] * 5, side.special)
    both = AttentionWidget.compare(left, right)
    assert isinstance(both, Comparison)
    left.token = 3
    assert right.token == 3


def test_a_side_by_side_page_holds_both_widgets_linked_within_the_budget():
    both = AttentionWidget.compare(make_capture(tokens=5, seed=0), make_capture(tokens=6, seed=1), names=("x", "y"))
    page = both.to_html(size_budget=2_000_000)
    assert page.count(f"<script type=\"application/json\" {wire.STATE_ELEMENT_ATTRIBUTE}>") == 2
    assert wire.LINKED_PAGE_ATTRIBUTE in page and len(page.encode()) <= 2_000_000
    assert ">x</h2>" in page and ">y</h2>" in page
    with pytest.raises(ValueError, match="different tokens.*layers"):
        AttentionWidget.compare(make_capture(tokens=5), make_capture(tokens=6), layers=[0])


def test_encoder_decoders_compare_every_stack_in_order():
    w = AttentionWidget.compare(make_seq2seq_capture(seed=0), make_seq2seq_capture(seed=1))
    assert w.capture.stacks == tuple(
        name for stack in ("encoder", "decoder", "cross") for name in (f"A-B:{stack}", f"A:{stack}", f"B:{stack}")
    )
    assert w.capture.stack_tokens("A-B:cross")[0].name == "decoder"
    assert set(w.compare_scores()["stack"]) == {"A-B:encoder", "A-B:decoder", "A-B:cross"}
    w.stack = "A:cross"  # the selection fits to a run's own stack as to any other
    assert w.capture.stack(w.stack).difference_of is None


def test_a_sinks_share_is_a_key_of_the_difference_and_of_the_distance():
    side = token_side("input", 2)
    rows = {"A": np.array([[[0.5, 0.25], [0.5, 0.5]]], dtype=np.float32), "B": np.array([[[0.5, 0.5], [0.25, 0.25]]], dtype=np.float32)}
    runs = [Capture([side], [StackRecord("self", "input", "input", [LayerRecord(rows[name], sinks=np.zeros(1, np.float32))])])
            for name in ("A", "B")]  # fmt: skip
    w = AttentionWidget.compare(*runs)
    chunk, _ = wire.head_chunk(w.capture, "A-B:self", 0, 0)
    values, sinks = wire.split_head_chunk(chunk, (2, 2), has_sinks=True, signed=True)
    # A's sink took 0.25 and 0 of the rows, B's 0 and 0.5.
    np.testing.assert_allclose(sinks, [0.25, -0.5], atol=1 / 254)
    np.testing.assert_allclose(values, rows["A"][0] - rows["B"][0], atol=1 / 254)
    expected = np.mean([js_distance(np.array([[0.5, 0.25, 0.25]]), np.array([[0.5, 0.5, 0.0]])),
                        js_distance(np.array([[0.5, 0.5, 0.0]]), np.array([[0.25, 0.25, 0.5]]))])  # fmt: skip
    assert w.compare_scores()["js_distance"][0] == pytest.approx(expected)
