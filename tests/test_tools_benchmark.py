"""The side-by-side benchmark's own plumbing (benchmarks/tools_benchmark.py) on tiny made-up results: what a
step printed is read back, and the table shows ratios against attnwidget's export and says why a cell has none."""

from __future__ import annotations

import importlib
import pathlib
import sys

import pytest


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "benchmarks"))
    try:
        yield importlib.import_module("tools_benchmark")
    finally:
        sys.path.pop(0)


def test_results_survive_noise_and_a_later_value_wins(bench):
    printed = ["loading...", 'RESULT {"capture_s": 1.5}',
               'RESULT {"export": {"up_front_bytes": 10}}', 'RESULT {"capture_s": 2.0}']  # fmt: skip
    assert bench.parse_results(printed) == {"capture_s": 2.0, "export": {"up_front_bytes": 10}}


def test_the_table_gives_ratios_to_the_export_of_the_same_input_and_keeps_reasons(bench):
    rows = [
        {"tool": bench.EXPORT, "input": "tiny", "python_s": 2.0, "up_front_bytes": 2_000_000, "first_paint_ms": 100.0},
        {"tool": bench.BERTVIZ, "input": "tiny", "python_s": 8.0, "up_front_bytes": 50_000_000, "first_paint_ms": 900.0},
        {"tool": bench.CIRCUITSVIS, "input": "tiny", "python_s": 1.0, "first_paint_ms": "no paint within 120 s"},
        {"tool": bench.EXPORT, "input": "long", "python_s": 4.0, "up_front_bytes": "over 6 GB"},
        {"tool": bench.BERTVIZ, "input": "long", "python_s": 40.0, "up_front_bytes": 9_000_000},
    ]
    lines = bench.markdown_table(rows).splitlines()
    assert len(lines) == 2 + len(rows)
    export, bertviz, circuitsvis, long_export, long_bertviz = (line.split(" | ") for line in lines[2:])
    assert export[2:5] == ["2.0 s", "2.00 MB", ""]  # the export itself carries no ratio
    assert bertviz[2:4] == ["8.0 s (4.0x)", "50.00 MB (25.0x)"]
    assert bertviz[5] == "900 ms (9.0x)"
    assert circuitsvis[2] == "1.0 s (0.5x)" and circuitsvis[5] == "no paint within 120 s"
    assert long_export[3] == "over 6 GB"
    assert long_bertviz[2:4] == ["40.0 s (10.0x)", "9.00 MB"]  # no ratio against a failed cell


def test_a_reason_that_fills_a_row_is_said_once(bench):
    reason = "did not finish within 300 s"
    rows = [{"tool": bench.EXPORT, "input": "tiny", "python_s": 2.0, "up_front_bytes": 7e6, "total_bytes": 7e6,
             **{key: reason for key in bench.BROWSER_METRICS}}]  # fmt: skip
    cells = [text.strip() for text in bench.markdown_table(rows).splitlines()[2].split("|")[1:-1]]
    assert cells[2:] == ["2.0 s", "7.00 MB", "7.00 MB", reason, "", "", "", ""]  # equal numbers are both shown
