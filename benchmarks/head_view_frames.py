"""The head view's frame times in an exported page, this build against an older one, side by side in one run.

    python benchmarks/head_view_frames.py --old-static /tmp/old-static       # a copy of another build's static/
    python benchmarks/head_view_frames.py --old-static DIR --tokens 512 --repeats 8
    python benchmarks/head_view_frames.py --old-static DIR --model llama --tokens 4096

Input: all-MiniLM-L6-v2 (6 layers x 12 heads, every head visible) on a text of exactly `--tokens` tokens, or a
random Llama (2 layers x 32 heads, 8 key-value heads, hidden 256) for long inputs, captured once; both pages are
`export_page` of that capture, one with this worktree's static/standalone.js, one with the old bundle (its CSS
too). Each opens from file:// in headless /usr/bin/chromium (no GPU, as in ui-tests), a fresh context per page,
viewport 1400 x 1000.

Interactions, each `--repeats` times, by real input through Playwright:
- hover: the mouse moves onto the next query token in view (a mouseover);
- head step: ArrowRight / ArrowLeft in the view, moving the focused head among 12 visible ones;
- head click: a click on a head chip (shows that head alone);
- scroll: the token list scrolled by 300 px (a scroll event): the worst of the 20 frames after it;
- wheel: 30 wheel notches of 100 px over the lines, sent back to back: every one of the 40 frames from the first
  (the median and the worst of those frames, not of repeats).

Timing, in the page: every listener the page adds for these events, and every animation-frame callback it asks for,
is wrapped, so the script a frame runs is the sum of performance.now() around each ("script"). A frame's own work
is timed from a requestAnimationFrame callback to a timeout queued there, which runs after that frame's style,
layout and paint on the main thread ("render"). "frame" = script + render: the main-thread work of the frame the
event caused, what must fit in 16 ms for a smooth hover. For a scroll, the worst of the 20 frames after it (the head
view repaints layers for a new band over several frames). Rasterisation on other threads is not included; vsync
waits are not either.
The machine is shared with other work: compare the two builds' columns, not absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
from unittest import mock

sys.path.insert(0, str(pathlib.Path(__file__).parent))

CHROMIUM = os.environ.get("ATTNWIDGET_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]  # fmt: skip
TIMED_EVENTS = ("mouseover", "keydown", "click", "scroll")
LLAMA_LAYERS = 2
"""The random Llama's layers here: the head view shows one layer, and fewer layers capture faster."""

# Installed before the page's own script: wraps the page's listeners of the timed events and its animation-frame
# callbacks, then times the frames after one event: per frame, the page's script since the last frame plus the
# frame's own work (from a requestAnimationFrame callback to a timeout queued there, after style, layout, paint).
TIMING = """(() => {
  const timed = new Set(%s);
  const bench = (window.__bench = { script: 0, pending: null });
  const time = (fn) => function (...args) {
    const start = performance.now();
    try { return fn.apply(this, args); } finally { bench.script += performance.now() - start; }
  };
  const add = EventTarget.prototype.addEventListener;
  EventTarget.prototype.addEventListener = function (type, listener, options) {
    if (!timed.has(type) || typeof listener !== "function") return add.call(this, type, listener, options);
    listener.__timed = time(listener);
    return add.call(this, type, listener.__timed, options);
  };
  const remove = EventTarget.prototype.removeEventListener;
  EventTarget.prototype.removeEventListener = function (type, listener, options) {
    return remove.call(this, type, (listener && listener.__timed) || listener, options);
  };
  const frame = window.requestAnimationFrame.bind(window);
  window.requestAnimationFrame = (callback) => frame(time(callback));
  // The frames after the next `type` event, `count` of them: [{script, render}], or null without the event.
  bench.arm = (type, count) => {
    bench.pending = new Promise((resolve) => {
      const frames = [];
      const next = () => frame(() => {
        const start = performance.now();
        setTimeout(() => {
          frames.push({ script: bench.script, render: performance.now() - start });
          bench.script = 0;
          if (frames.length < count) next(); else resolve(frames);
        }, 0);
      });
      const onEvent = () => next();
      // Scroll events do not reach window; the scroller is where they are dispatched.
      const target = type === "scroll" ? document.querySelector(".aw-headview .aw-scroll") : window;
      bench.script = 0;
      target.addEventListener(type, onEvent, { once: true, capture: true });
      setTimeout(() => resolve(null), 10000);
    });
  };
})();""" % list(TIMED_EVENTS)
FRAMES_AFTER = {"scroll": 20}
WHEEL_NOTCHES, WHEEL_FRAMES = 30, 40
"""A continuous scroll: 30 wheel notches sent as fast as Playwright does, each of 40 frames from the first timed."""
"""A scroll may leave layers to repaint in the frames after it: the worst of these counts. Others: the first."""


def capture_input(model_name: str, n_tokens: int):
    """MiniLM, or the random Llama of 32 heads (8 key-value heads, hidden 256) with `LLAMA_LAYERS` layers."""
    import torch
    from capture_benchmark import minilm_path, text_of
    from transformers import AutoModel, AutoTokenizer, LlamaConfig, LlamaModel

    from attnwidget import capture

    torch.set_num_threads(1)
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    if model_name == "minilm":
        model = AutoModel.from_pretrained(minilm_path())
    else:
        config = LlamaConfig(num_hidden_layers=LLAMA_LAYERS, num_attention_heads=32, num_key_value_heads=8,
                             hidden_size=256, intermediate_size=512, vocab_size=30522,
                             max_position_embeddings=8192, attn_implementation="eager")  # fmt: skip
        torch.manual_seed(0)
        model = LlamaModel(config)
        tokenizer.model_max_length = config.max_position_embeddings
    return capture(model.eval(), tokenizer, text_of(tokenizer, n_tokens))


def export(capture, path: pathlib.Path, static: pathlib.Path | None, selection=None, view: str = "head",
           token: int | None = None, **options) -> None:  # fmt: skip
    """The page with the viewer of `static` (this worktree's when None), opening on `selection`, by default `view` at
    layer 1 (MiniLM: 2), head 0, query `token`, every head visible; only the heads the default size budget holds have
    their attention in it. `options` go to `export_page`."""
    from attnwidget import export

    if selection is None:
        selection = {"layer": min(2, capture.num_layers() - 1), "head": 0, "heads": list(range(capture.num_heads())),
                     "token": token, "stack": capture.stacks[0], "view": view, "theme": "light", "pair_filter": "all",
                     "score": "", "step": None}  # fmt: skip
    if static is None:
        export.export_page(capture, selection, path, **options)
        return
    with mock.patch.object(export, "STANDALONE_JS", static / "standalone.js"), mock.patch.object(
        export, "STANDALONE_CSS", static / "standalone.css"
    ):
        export.export_page(capture, selection, path, **options)


def frames_after(page, event: str, count: int, act) -> list[dict]:
    """Script and render of each of the `count` frames after the event that `act` causes (none without it)."""
    page.evaluate("([type, count]) => window.__bench.arm(type, count)", [event, count])
    act()
    frames = page.evaluate("() => window.__bench.pending") or []
    page.wait_for_timeout(30)
    return frames


def timed(page, event: str, act) -> dict | None:
    """The costliest frame of those after the event (script and render of that frame), or None."""
    frames = frames_after(page, event, FRAMES_AFTER.get(event, 1), act)
    return max(frames, key=lambda f: f["script"] + f["render"]) if frames else None


def measure(browser, path: pathlib.Path, repeats: int, shots: pathlib.Path | None, name: str) -> dict[str, list[dict]]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.add_init_script(TIMING)
    page.goto(path.as_uri())
    view = page.get_by_role("region", name="Head view")
    view.locator(".aw-lines canvas").wait_for()
    page.wait_for_timeout(1500)  # the first paint and its layers
    if shots:
        view.screenshot(path=shots / f"{name}-head-view.png")
    tokens = view.get_by_role("group", name="Query tokens").locator(".aw-tok")
    scroller = view.locator(".aw-scroll")
    results: dict[str, list[dict]] = {"hover": [], "head step": [], "head click": [], "scroll": []}

    def token_point(i: int) -> tuple[float, float]:
        box = tokens.nth(i).bounding_box()
        return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2

    page.mouse.move(*token_point(2))
    for i in range(repeats):
        results["hover"].append(timed(page, "mouseover", lambda i=i: page.mouse.move(*token_point(3 + i % 12))))
    page.mouse.move(5, 5)  # off the tokens: the overview again
    page.wait_for_timeout(300)
    tokens.nth(0).focus()  # keys go to the view; focusing pins nothing
    for i in range(repeats):
        key = "ArrowRight" if i % 2 == 0 else "ArrowLeft"
        results["head step"].append(timed(page, "keydown", lambda key=key: page.keyboard.press(key)))
    for i in range(repeats):
        chip = view.get_by_role("button", name=f"Head {1 + i % 3}", exact=True)
        results["head click"].append(timed(page, "click", chip.click))
    view.get_by_role("button", name="All", exact=True).click()
    page.wait_for_timeout(500)
    for i in range(repeats):
        results["scroll"].append(timed(page, "scroll", lambda: scroller.evaluate("box => box.scrollBy(0, 300)")))
    # The wheel over the lines (not a token, which would hover), 100 px a notch: every frame while it turns.
    lines, box = view.locator(".aw-lines").bounding_box(), scroller.bounding_box()
    page.mouse.move(lines["x"] + lines["width"] / 2, box["y"] + box["height"] / 2)

    def wheel() -> None:
        for _ in range(WHEEL_NOTCHES):
            page.mouse.wheel(0, 100)

    results["wheel"] = frames_after(page, "scroll", WHEEL_FRAMES, wheel)
    if shots:
        view.screenshot(path=shots / f"{name}-head-view-scrolled.png")
    rows = view.locator(".aw-tok").count()
    context.close()
    return {**results, "rows": rows}


def summary(samples: list[dict | None]) -> str:
    done = [s for s in samples if s]
    if not done:
        return "no frame"
    frame = [s["script"] + s["render"] for s in done]
    script = [s["script"] for s in done]
    return f"{statistics.median(frame):6.1f} (max {max(frame):6.1f}; script {statistics.median(script):6.1f})"


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old-static", type=pathlib.Path, required=True, help="a copy of the older build's static/")
    parser.add_argument("--model", choices=["minilm", "llama"], default="minilm")
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--screenshots", type=pathlib.Path, help="save each page's head view here")
    args = parser.parse_args()

    capture = capture_input(args.model, args.tokens)
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        pages = {"old": pathlib.Path(folder) / "old.html", "new": pathlib.Path(folder) / "new.html"}
        export(capture, pages["old"], args.old_static)
        export(capture, pages["new"], None)
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        if args.screenshots:
            args.screenshots.mkdir(parents=True, exist_ok=True)
        results = {name: measure(browser, path, args.repeats, args.screenshots, name) for name, path in pages.items()}
        browser.close()

    heads = capture.num_heads()
    print(f"{args.model}, {args.tokens} tokens, {heads} heads visible (those in the page drawn); ms per frame, "
          f"median of {args.repeats} (max; script part); machine shared")  # fmt: skip
    print(f"{'interaction':<12} | {'old build':<40} | {'this build':<40}")
    for interaction in ("hover", "head step", "head click", "scroll", "wheel"):
        old, new = summary(results["old"][interaction]), summary(results["new"][interaction])
        print(f"{interaction:<12} | {old:<40} | {new:<40}")
    print(f"{'token rows in the DOM':<12} | {results['old']['rows']:<40} | {results['new']['rows']:<40}")


if __name__ == "__main__":
    main()
