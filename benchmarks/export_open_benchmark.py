"""How fast an export of a 4096-token, 32-layer x 32-head Llama opens, this build against an older one, side by side.

    python benchmarks/export_open_benchmark.py --old-static /tmp/old-static    # a copy of another build's static/
    python benchmarks/export_open_benchmark.py --old-static DIR --repeats 6 --keep /tmp/pages

Input: the random Llama of long_capture_benchmark.py (32 layers x 32 heads, 8 key-value heads, hidden 256) on 4096
tokens, captured once (minutes: every head's thumbnail is computed); its widget on the matrix view of layer 31, head
0, exported under the default size budget twice, once with this worktree's static/standalone.js and once with the
old bundle. The pages differ only in their viewer.

Each page opens from file:// in headless /usr/bin/chromium (no GPU, as in ui-tests), network cut, a fresh context
per opening, the two pages alternating `--repeats` times. Measured as ui-tests/test_long_context.py does:
- open: performance.now() once the matrix is no longer busy (its stand-in replaced by the head's own map),
  i.e. from navigation to the painted map, read after Playwright's wait returns;
- switch: a click on another held head's button to the map no longer busy, for three heads right after opening.
The machine is shared with other work: compare the two builds' columns, not absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import statistics
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from head_view_frames import CHROMIUM, CHROMIUM_ARGS  # noqa: E402  (sibling scripts)
from head_view_frames import export as export_with  # noqa: E402
from long_capture_benchmark import llama  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).parent.parent / "ui-tests"))
from lab import MAP_PAINTED, SWITCH_AND_TIME  # noqa: E402  (the timing of ui-tests/test_long_context.py)

TOKENS = 4096


def pages(directory: pathlib.Path, old_static: pathlib.Path) -> dict[str, pathlib.Path]:
    from attnwidget import AttentionWidget

    model, tokenizer, text = llama(TOKENS)
    widget = AttentionWidget(model, text, tokenizer=tokenizer, view="matrix")
    selection = {**widget.selection, "layer": 31, "head": 0}
    paths = {"new": directory / "new.html", "old": directory / "old.html"}
    for build, static in (("new", None), ("old", old_static)):
        export_with(widget.capture, paths[build], static, selection, thumbnails=widget._thumbs)
    return paths


def open_and_switch(browser, path: pathlib.Path) -> tuple[float, list[float]]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, offline=True)
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file://") else route.abort())
    try:
        page = context.new_page()
        page.goto(path.as_uri())
        page.wait_for_function(MAP_PAINTED, timeout=60_000, polling="raf")
        opened = page.evaluate("performance.now()")
        state = json.loads(re.search(r"data-attnwidget-export>(.*?)</script>", path.read_text(), re.S)[1])
        held = [int(key.split("/")[2]) for key in state["binary"]["_chunks"] if key.startswith("self/31/")]
        switches = [page.evaluate(SWITCH_AND_TIME, f"Head {head}") for head in [h for h in held if h != 0][:3]]
        return opened, switches
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old-static", type=pathlib.Path, required=True, help="another build's static/ directory")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--keep", type=pathlib.Path, help="write the two pages here (else a temporary directory)")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as temporary:
        directory = args.keep or pathlib.Path(temporary)
        directory.mkdir(parents=True, exist_ok=True)
        paths = pages(directory, args.old_static)
        results: dict[str, dict[str, list[float]]] = {build: {"open": [], "switch": []} for build in paths}
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for _ in range(args.repeats):
                for build, path in paths.items():
                    opened, switches = open_and_switch(browser, path)
                    results[build]["open"].append(opened)
                    results[build]["switch"] += switches
            browser.close()
        size = {build: path.stat().st_size / 1e6 for build, path in paths.items()}

    print(f"Llama 32 x 32, {TOKENS} tokens, export under the default budget; {args.repeats} openings each, "
          f"alternating; ms, median [min-max]\n")
    print(f"{'build':<8}{'MB':>7}{'open':>26}{'head switch':>26}")
    for build, measured in results.items():
        cells = [f"{statistics.median(values):.0f} [{min(values):.0f}-{max(values):.0f}]" for values in measured.values()]
        print(f"{build:<8}{size[build]:>7.2f}{cells[0]:>26}{cells[1]:>26}")


if __name__ == "__main__":
    main()
