"""Scrolling the neuron view's key rows at 4096 keys, this build against an older one, side by side in one run.

    python benchmarks/neuron_scroll_frames.py --old-static /tmp/old-static      # a copy of another build's static/
    python benchmarks/neuron_scroll_frames.py --old-static DIR --tokens 4096 --repeats 3 --trace

Input: the random Llama of head_view_frames.py (2 layers x 32 heads, 8 key-value heads, hidden 256, head_dim 8; the
neuron view shows one head, so fewer layers change nothing it draws) on a text of `--tokens` tokens, captured once.
Both pages are `export_page` of that capture opening on the neuron view of layer 1, head 0, the last query token (so
every key is visible to it, none masked): one page with this worktree's static/standalone.js, one with the old
bundle. Each opens from file:// in headless /usr/bin/chromium (no GPU, as in ui-tests), viewport 1400 x 1000.

Interactions, each `--repeats` times, alternating the pages:
- wheel: the pointer over the key rows, `WHEEL_NOTCHES` wheel notches of 100 px sent back to back by Playwright, as a
  user spinning the wheel;
- drag-like scroll: the scroll box's scrollTop moved by 600 px in every frame for 30 frames (a scrollbar drag).
Timing, in the page: the time between consecutive animation frames while it scrolls (16.7 ms when nothing waits,
at 60 Hz); reported as the median and the worst, and how many frames take over 33 ms (a skipped frame or more).
With --trace, Chromium's own timeline (CDP tracing, devtools.timeline) of one wheel run per page, summed by event:
script, style, layout, paint, layerize, composite, so a slow frame shows where it goes.
The machine is shared with other work: compare the two builds' columns, not absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import collections
import pathlib
import statistics
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from head_view_frames import CHROMIUM, CHROMIUM_ARGS, capture_input, export  # noqa: E402  (sibling script)

WHEEL_NOTCHES = 40

# Records every animation frame's time from when it is armed until it is read.
FRAME_CLOCK = """(() => {
  const clock = (window.__frames = { stamps: [], on: false });
  const tick = (now) => { if (clock.on) { clock.stamps.push(now); requestAnimationFrame(tick); } };
  clock.start = () => { clock.stamps = []; clock.on = true; requestAnimationFrame(tick); };
  clock.stop = () => { clock.on = false; return clock.stamps.slice(1).map((t, i) => t - clock.stamps[i]); };
})();"""

DRAG = """(steps) => new Promise((resolve) => {
  const box = document.querySelector(".aw-neuronview .aw-scroll");
  let left = steps;
  const step = () => { box.scrollTop += 600; if (--left > 0) requestAnimationFrame(step); else resolve(); };
  requestAnimationFrame(step);
})"""

# Timeline events that are Chromium's work on the main thread, by what they are.
TRACE_KINDS = {
    "FunctionCall": "script", "EventDispatch": "script", "FireAnimationFrame": "script", "TimerFire": "script",
    "UpdateLayoutTree": "style", "Layout": "layout", "PrePaint": "pre-paint", "Paint": "paint",
    "Layerize": "layerize", "UpdateLayer": "layerize", "CompositeLayers": "composite", "Commit": "commit",
    "RasterTask": "raster",
}  # fmt: skip


def open_page(browser, path: pathlib.Path):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.add_init_script(FRAME_CLOCK)
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort())
    page.goto(path.as_uri())
    page.locator(".aw-neuron-rows .aw-nrow[data-softmax]").first.wait_for(timeout=60000)
    page.wait_for_timeout(1000)
    return context, page


def to_top(page) -> None:
    page.evaluate("() => { document.querySelector('.aw-neuronview .aw-scroll').scrollTop = 0; }")
    page.wait_for_timeout(300)


def wheel(page) -> list[float]:
    to_top(page)
    box = page.locator(".aw-neuronview .aw-neuron-body").bounding_box()
    scroller = page.locator(".aw-neuronview .aw-scroll").bounding_box()
    page.mouse.move(box["x"] + 300, scroller["y"] + scroller["height"] / 2)
    page.evaluate("() => window.__frames.start()")
    for _ in range(WHEEL_NOTCHES):
        page.mouse.wheel(0, 100)
    page.wait_for_timeout(400)  # the scroll animation ends, and the frames after it
    return page.evaluate("() => window.__frames.stop()")


def drag(page) -> list[float]:
    to_top(page)
    page.evaluate("() => window.__frames.start()")
    page.evaluate(DRAG, 30)
    page.wait_for_timeout(100)
    return page.evaluate("() => window.__frames.stop()")


def traced(page, act) -> dict[str, float]:
    """ms of the main thread's work during `act`, by kind (TRACE_KINDS), from Chromium's timeline."""
    cdp = page.context.new_cdp_session(page)
    events: list[dict] = []
    done = []
    cdp.on("Tracing.dataCollected", lambda data: events.extend(data["value"]))
    cdp.on("Tracing.tracingComplete", lambda _: done.append(True))
    cdp.send("Tracing.start", {"categories": "devtools.timeline,disabled-by-default-devtools.timeline",
                               "transferMode": "ReportEvents"})  # fmt: skip
    act(page)
    cdp.send("Tracing.end")
    while not done:
        page.wait_for_timeout(50)
    main = {e["tid"] for e in events if e.get("name") == "thread_name" and e["args"].get("name") == "CrRendererMain"}
    spans: dict[tuple[str, int], list[tuple[float, float]]] = collections.defaultdict(list)
    for event in events:
        kind = TRACE_KINDS.get(event.get("name"))
        if kind and event.get("ph") == "X" and (event["tid"] in main or kind == "raster"):
            spans[kind, event["tid"]].append((event["ts"], event["ts"] + event.get("dur", 0)))
    cdp.detach()
    # Events of a kind nest (a Paint of the document holds one of <html>): count each thread's time in them once.
    totals: dict[str, float] = collections.defaultdict(float)
    for (kind, _), intervals in spans.items():
        end = float("-inf")
        for start, stop in sorted(intervals):
            totals[kind] += max(0.0, stop - max(start, end)) / 1000
            end = max(end, stop)
    return dict(totals)


def summary(intervals: list[float]) -> str:
    if not intervals:
        return "no frame"
    slow = sum(t > 33.4 for t in intervals)
    return f"{statistics.median(intervals):5.1f} (max {max(intervals):5.0f}; {slow:2d}/{len(intervals)} > 33 ms)"


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old-static", type=pathlib.Path, required=True, help="a copy of the older build's static/")
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trace", action="store_true", help="also sum Chromium's timeline of one wheel run")
    args = parser.parse_args()

    capture = capture_input("llama", args.tokens)
    n = len(capture.tokens)
    builds = ("old", "new")
    results: dict[str, dict[str, list[float]]] = {b: {"wheel": [], "drag": []} for b in builds}
    traces: dict[str, dict[str, float]] = {}
    rows: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        paths = {b: pathlib.Path(folder) / f"{b}.html" for b in builds}
        export(capture, paths["old"], args.old_static, view="neuron", token=n - 1)
        export(capture, paths["new"], None, view="neuron", token=n - 1)
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pages = {b: open_page(browser, paths[b]) for b in builds}
        for _ in range(args.repeats):
            for b in builds:
                page = pages[b][1]
                results[b]["wheel"] += wheel(page)
                results[b]["drag"] += drag(page)
        for b in builds:
            page = pages[b][1]
            rows[b] = page.locator(".aw-neuron-rows .aw-nrow").count()
            if args.trace:
                traces[b] = traced(page, wheel)
            pages[b][0].close()
        browser.close()

    print(f"neuron view, random Llama head of {n} keys, last query; ms between animation frames while scrolling, "
          f"median (worst; frames over 33 ms), {args.repeats} runs each; machine shared")
    print(f"{'scroll':<8} | {'old build':<36} | {'this build':<36}")
    for how in ("wheel", "drag"):
        print(f"{how:<8} | {summary(results['old'][how]):<36} | {summary(results['new'][how]):<36}")
    print(f"{'key rows in the DOM':<20} {rows['old']} | {rows['new']}")
    if traces:
        kinds = sorted({k for t in traces.values() for k in t}, key=lambda k: -traces["old"].get(k, 0))
        print("Chromium timeline of one wheel run, ms on the main thread (raster: all threads)")
        for kind in kinds:
            print(f"  {kind:<10} {traces['old'].get(kind, 0):8.0f} | {traces['new'].get(kind, 0):8.0f}")


if __name__ == "__main__":
    main()
