"""The model view's atlas from Python: every head's scores in `meta.head_scores`, the `score` trait that picks one,
and how scores computed later (`w.head_scores()`, `w.induction_scores()`) reach the page and its export."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
import traitlets
from conftest import build_tiny, from_browser, make_capture, make_seq2seq_capture

from attnwidget import AttentionWidget, export, widget as widget_module, wire
from attnwidget.analysis.scores import SCORES


def shown(widget, stack: str, layer: int, head: int) -> dict[str, float | None]:
    """The scores the page has for one head, by name."""
    scores = widget.meta["head_scores"]
    values = scores["values"][stack][layer][head]
    return {score["name"]: value for score, value in zip(scores["scores"], values)}


def test_a_short_capture_opens_with_every_heads_scores_as_head_scores_computes_them(widgets):
    capture = make_seq2seq_capture()
    widget = widgets(capture)
    frame = capture.head_scores(progress=False)
    assert [score["name"] for score in widget.meta["head_scores"]["scores"]] == list(SCORES)
    assert len(frame) == sum(capture.num_layers(s) * capture.num_heads(s) for s in capture.stacks)
    for row in frame.itertuples(index=False):
        page = shown(widget, row.stack, row.layer, row[2])
        for name in SCORES:
            value = getattr(row, name)
            if pd.isna(value):
                assert page[name] is None, f"{name} of {row.stack}/{row.layer}/{row[2]} is undefined: null"
            else:
                assert page[name] == pytest.approx(float(value), rel=1e-12)
    # Cross-attention compares no positions: its position scores are null, its entropy is not.
    assert shown(widget, "cross", 0, 0)["previous_token"] is None and shown(widget, "cross", 0, 0)["entropy"] > 0
    bounds = {score["name"]: score["range"] for score in widget.meta["head_scores"]["scores"]}
    assert bounds["previous_token"] == [0.0, 1.0] and bounds["entropy"] is None


def test_a_long_capture_scores_its_heads_when_asked_and_the_score_trait_waits_for_them(widgets, monkeypatch):
    monkeypatch.setattr(widget_module, "AUTO_SCORE_VALUES", 0)  # as if 4096 tokens on 32 x 32 heads
    widget = widgets(make_capture(layers=2, heads=3, tokens=6))
    assert "head_scores" not in widget.meta
    with pytest.raises(traitlets.TraitError, match=r"score 'entropy' .* none yet: call w.head_scores\(\)"):
        widget.score = "entropy"
    frame = widget.head_scores(layers=[1], progress=False)
    assert sorted(set(frame["layer"])) == [1]
    assert shown(widget, "self", 1, 2)["entropy"] == pytest.approx(float(frame.iloc[2]["entropy"]))
    assert shown(widget, "self", 0, 2)["entropy"] is None, "layer 0 was not scored"
    widget.score = "previous_token"
    from_browser(widget, {"score": "no_such_score"})
    assert widget.score == "previous_token", "the browser cannot pick a score the widget does not have"
    from_browser(widget, {"score": "first_token"})
    assert widget.score == "first_token"


def test_the_export_opens_on_the_chosen_score_with_every_heads_scores(widgets):
    widget = widgets(make_capture(layers=2, heads=3, tokens=6), score="current_token")
    page = export.export_page(widget.capture, widget.selection, head_scores=widget.meta["head_scores"])
    state = export_state(page.html)
    assert state["traits"]["score"] == "current_token"
    assert state["traits"]["meta"]["head_scores"] == widget.meta["head_scores"]


def test_induction_scores_join_the_pages_scores(minilm_tokenizer):
    model = build_tiny("llama")
    widget = AttentionWidget(model, "leaves fall in autumn", tokenizer=minilm_tokenizer)
    try:
        frame = widget.induction_scores(seq_len=6, batches=1)
        page = shown(widget, "self", 1, 3)
        row = frame[(frame["layer"] == 1) & (frame["head"] == 3)].iloc[0]
        assert page["induction"] == pytest.approx(float(row["induction"]))
        assert page["duplicate_token"] == pytest.approx(float(row["duplicate_token"]))
        assert page["entropy"] is not None, "the scores the widget had are kept"
    finally:
        widget.close()


def export_state(html: str) -> dict:
    return json.loads(re.search(r"data-attnwidget-export>(.*?)</script>", html, re.S)[1])
