"""The one stack-fit rule, case by case from tests/fixtures/stack_fit.json; js/selection.test.ts reads the same."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
from conftest import random_stack

from attnwidget import wire
from attnwidget.capturing import Capture, TokenSide
from attnwidget.capturing.derived import with_derived_stacks

TABLE = json.loads((pathlib.Path(__file__).parent / "fixtures" / "stack_fit.json").read_text(encoding="utf-8"))
FITTED = ("stack", "layer", "head", "heads", "token", "pair_filter")

pytestmark = pytest.mark.usefixtures("recording_comm")


def capture_of(meta: dict) -> Capture:
    """A capture whose token sides and recorded stacks are the ones `meta` describes, with random attention; the
    widget derives the rest."""
    sides = {}
    for name, side in meta["sides"].items():
        if side["words"] is not None:
            continue
        tokens = side["tokens"]
        sides[name] = TokenSide(name, tokens, list(tokens), list(range(len(tokens))), side["special"],
                                side["segment_b_start"])
    rng = np.random.default_rng(0)
    stacks = [
        random_stack(rng, entry["name"], sides[entry["query_side"]], sides[entry["key_side"]], entry["layers"],
                     entry["heads"], np.array(entry["kv_head_of"]))
        for entry in meta["stacks"]
        if entry["derived"] is None
    ]
    return Capture(list(sides.values()), stacks)


def test_the_capture_matches_the_table_meta():
    meta = wire.build_meta(with_derived_stacks(capture_of(TABLE["meta"])), chunks_complete=False)
    assert meta == TABLE["meta"]


@pytest.mark.parametrize("case", TABLE["cases"], ids=[case["name"] for case in TABLE["cases"]])
def test_a_new_stack_fits_the_selection_as_the_table_says(widgets, case):
    widget = widgets(capture_of(TABLE["meta"]), **case["from"])
    assert {name: getattr(widget, name) for name in FITTED} == case["from"], "the starting selection is taken as is"

    widget.stack = case["to"]

    assert {name: getattr(widget, name) for name in FITTED} == case["expect"]
