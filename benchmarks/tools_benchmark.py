"""attnwidget, BertViz and CircuitsVis on the same inputs, in one run: Python, bytes, browser paint and frames.

Setup once: `bash benchmarks/setup_tools_benchmark.sh` (CircuitsVis in its own venv, the CDN scripts as local
files, all under build/tools-benchmark/). Then:

    python benchmarks/tools_benchmark.py                       # every tool x input: 20-30 minutes on 2 cores
    python benchmarks/tools_benchmark.py --inputs minilm-128   # a quick look
    python benchmarks/tools_benchmark.py --table               # the last run's table again

Inputs: all-MiniLM-L6-v2 (6 layers x 12 heads) at 128 and 512 tokens; a random Llama, 32 layers x 32 heads
(8 key-value heads, hidden 256, MiniLM's tokenizer), at 1024, 2048 and 4096 tokens.

Rows, each from attnwidget.capture's attention of the same text (exact, so every tool gets the same numbers):
- attnwidget export: `AttentionWidget.from_capture(capture)` saved by `export_page` (default size budget).
- attnwidget widget: the state ipywidgets sends when the comm opens (JSON + buffers) is "up front"; "total" adds
  every attention and query-key byte the browser may request later. Its browser numbers need a kernel: ui-tests.
- BertViz: `head_view(attention, tokens, html_action="return")` over every layer.
- CircuitsVis: `attention_heads(attention, tokens)` over one layer (0): it draws one layer per call.
"Python s" is attention + tool: the capture (made once per input by the attnwidget step, its seconds counted in
every row; plus deriving the layers BertViz or CircuitsVis take) and the tool's own call.

Browser: /usr/bin/chromium through Playwright, a fresh browser per page opened from file://, every request refused
except the CDN scripts BertViz and CircuitsVis import, answered from build/tools-benchmark/vendor (BertViz's
require.js, d3, jQuery) and from CircuitsVis's own bundle (its wheel's dist/cdn/iife.js, served as the ES module
its page imports from unpkg).
- first paint: ms from navigation start to the animation frame after the first frame in which a canvas holds a
  non-transparent pixel or an SVG holds a <line> (BertViz's attention lines), polled by requestAnimationFrame.
- head switch, layer switch, hover: real input (Playwright's mouse and select), timed in the page from the event's
  arrival (a capturing listener on window) to the end of the first frame rendered after the last canvas call it
  caused (a timeout queued from requestAnimationFrame, so that frame's style, layout and paint are included);
  drawing counts as over after QUIET_MS without a canvas call. The median over three heads, three layers
  (each layer's first visit) and five tokens. Gestures: attnwidget: click chip "Head h" (that head alone), the
  Layer select, query tokens; BertViz: double-click head box h (its "that head alone": the browser fires click,
  click, dblclick), its Layer select, left-hand tokens; CircuitsVis: click thumbnail "Head h" (its "click to
  lock"), no layer switch (one layer per page), cells of the zoomed pattern (its tooltip).
- JS heap: CDP Runtime.getHeapUsage after a forced garbage collection: the V8 heap's used bytes plus the embedder's
  (DOM) and the ArrayBuffer backing stores (where attnwidget keeps its bytes), after first paint and again after
  the interactions; the larger.

Limits: every step runs as its own process group with a wall-clock limit and a watch on the resident memory of its
whole process tree (Chromium's processes included, shared pages counted in each); past either it is killed and its
cells say so. BertViz and CircuitsVis are not run on the longer inputs of a model once a shorter one did not finish.
Results: build/tools-benchmark/results.json and results.md. The machine is shared: compare the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import pickle
import signal
import statistics
import subprocess
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "tools-benchmark"
PAGES = OUT / "pages"
VENDOR = OUT / "vendor"
CIRCUITSVIS_PYTHON = OUT / "circuitsvis-venv" / "bin" / "python"
CHROMIUM = os.environ.get("ATTNWIDGET_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]  # fmt: skip
VIEWPORT = {"width": 1400, "height": 1000}

INPUTS = {
    "minilm-128": ("minilm", 128),
    "minilm-512": ("minilm", 512),
    "llama-1024": ("llama", 1024),
    "llama-2048": ("llama", 2048),
    "llama-4096": ("llama", 4096),
}
EXPORT, WIDGET, BERTVIZ, CIRCUITSVIS = "attnwidget export", "attnwidget widget", "BertViz", "CircuitsVis"
TOOLS = (EXPORT, WIDGET, BERTVIZ, CIRCUITSVIS)
METRICS = {  # key: (column, unit)
    "python_s": ("Python s", "s"),
    "up_front_bytes": ("up front", "B"),
    "total_bytes": ("total", "B"),
    "first_paint_ms": ("first paint", "ms"),
    "head_switch_ms": ("head switch", "ms"),
    "layer_switch_ms": ("layer switch", "ms"),
    "hover_ms": ("hover", "ms"),
    "heap_mb": ("JS heap", "MB"),
}
BROWSER_METRICS = ("first_paint_ms", "head_switch_ms", "layer_switch_ms", "hover_ms", "heap_mb")
QUIET_MS = 1000
FRAME_LIMIT_MS = 30_000
CIRCUITSVIS_LAYER = 0


# -- the inputs (child processes) -----------------------------------------------------------------
def load_input(name: str):
    """(model, tokenizer, text of exactly the input's token count)."""
    import torch
    from capture_benchmark import minilm_path, text_of
    from transformers import AutoModel, AutoTokenizer, LlamaConfig, LlamaModel

    kind, n_tokens = INPUTS[name]
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    if kind == "minilm":
        model = AutoModel.from_pretrained(minilm_path())
    else:
        config = LlamaConfig(num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8, hidden_size=256,
                             intermediate_size=512, vocab_size=30522, max_position_embeddings=4096)  # fmt: skip
        torch.manual_seed(0)
        model = LlamaModel(config)
        tokenizer.model_max_length = config.max_position_embeddings  # the Llama's limit, not MiniLM's 512
    return model.eval(), tokenizer, text_of(tokenizer, n_tokens)


def timed_capture(name: str):
    from attnwidget import capture

    model, tokenizer, text = load_input(name)
    start = time.perf_counter()
    result = capture(model, tokenizer, text)
    return result, time.perf_counter() - start


def saved_capture(name: str) -> pathlib.Path:
    return OUT / f"capture-{name}.pickle"


def shared_capture(name: str):
    """(capture, seconds) the attnwidget step saved for this input in this run, else a capture of its own."""
    if saved_capture(name).exists():
        with open(saved_capture(name), "rb") as file:
            return pickle.load(file)
    return timed_capture(name)


def emit(**fields) -> None:
    """One line of results for the parent, as soon as it is known: a step killed later keeps what it printed."""
    print("RESULT " + json.dumps(fields), flush=True)


def page_path(tool: str, name: str) -> pathlib.Path:
    return PAGES / f"{tool.split()[0].lower()}-{name}.html"


def build_attnwidget(name: str) -> None:
    from ipywidgets.widgets.widget import _remove_buffers

    from attnwidget import AttentionWidget, wire
    from attnwidget.export import export_page

    capture, capture_s = timed_capture(name)
    emit(capture_s=capture_s)
    with open(saved_capture(name), "wb") as file:  # the other tools get the same attention, captured once
        pickle.dump((capture, capture_s), file)

    start = time.perf_counter()
    widget = AttentionWidget.from_capture(capture)
    state, paths, buffers = _remove_buffers(widget.get_state())
    seconds = time.perf_counter() - start
    sizes = [memoryview(buffer).nbytes for buffer in buffers]
    up_front = len(json.dumps(state, ensure_ascii=False).encode()) + sum(sizes)
    preloaded = sum(size for path, size in zip(paths, sizes) if path[0] in (wire.ATTENTION_TRAIT, wire.QUERY_KEY_TRAIT))
    requestable = wire.attention_bytes(capture) + (wire.all_query_key_bytes(capture) if wire.has_query_key(capture) else 0)
    emit(widget={"python_s": capture_s + seconds, "python_parts": [capture_s, seconds], "up_front_bytes": up_front,
                 "total_bytes": up_front - preloaded + requestable})  # fmt: skip

    start = time.perf_counter()
    page = export_page(capture, widget.selection, page_path(EXPORT, name))
    seconds = time.perf_counter() - start
    size = page_path(EXPORT, name).stat().st_size
    note = f"left out {page.left_out_text()}" if page.left_out else ""
    emit(export={"python_s": capture_s + seconds, "python_parts": [capture_s, seconds], "up_front_bytes": size,
                 "total_bytes": size, "note": note})  # fmt: skip


def build_bertviz(name: str) -> None:
    import torch
    from bertviz import head_view

    capture, capture_s = shared_capture(name)
    start = time.perf_counter()
    attention = tuple(torch.from_numpy(capture.layer_attention(layer))[None] for layer in range(capture.num_layers()))
    attention_s = capture_s + time.perf_counter() - start
    emit(attention_s=attention_s)
    start = time.perf_counter()
    html = head_view(attention, capture.raw_tokens, html_action="return").data
    seconds = time.perf_counter() - start
    size = write_page(page_path(BERTVIZ, name), html)
    vendor = sum(path.stat().st_size for path in bertviz_scripts().values())
    emit(bertviz={"python_s": attention_s + seconds, "python_parts": [attention_s, seconds],
                  "up_front_bytes": size + vendor, "total_bytes": size + vendor})  # fmt: skip


def circuitsvis_attention(name: str) -> None:
    """One layer's attention and the tokens, as files for the CircuitsVis step in its own venv."""
    import numpy as np

    capture, capture_s = shared_capture(name)
    start = time.perf_counter()
    attention = capture.layer_attention(CIRCUITSVIS_LAYER)
    attention_s = capture_s + time.perf_counter() - start
    np.save(OUT / f"circuitsvis-{name}.npy", attention)
    (OUT / f"circuitsvis-{name}.json").write_text(json.dumps(list(capture.raw_tokens)))
    emit(attention_s=attention_s)


def build_circuitsvis(name: str) -> None:
    """Runs in CircuitsVis's venv: its page for the layer circuitsvis_attention saved."""
    import circuitsvis
    import numpy as np
    from circuitsvis.attention import attention_heads

    attention = np.load(OUT / f"circuitsvis-{name}.npy")
    tokens = json.loads((OUT / f"circuitsvis-{name}.json").read_text())
    start = time.perf_counter()
    html = str(attention_heads(attention, tokens))
    seconds = time.perf_counter() - start
    size = write_page(page_path(CIRCUITSVIS, name), html)
    emit(build_s=seconds, bytes=size, version=circuitsvis.__version__)


def write_page(path: pathlib.Path, body: str) -> int:
    """The tool's HTML in a minimal document; the size counted is the tool's HTML alone."""
    data = body.encode()
    path.write_bytes(b'<!doctype html><html><head><meta charset="utf-8"></head><body>' + data + b"</body></html>")
    return len(data)


# -- the CDN scripts, answered locally -------------------------------------------------------------
def bertviz_scripts() -> dict[str, pathlib.Path]:
    cdn = "https://cdnjs.cloudflare.com/ajax/libs"
    return {
        f"{cdn}/require.js/2.3.6/require.min.js": VENDOR / "requirejs-2.3.6" / "require.js",
        f"{cdn}/d3/5.7.0/d3.min.js": VENDOR / "d3-5.7.0" / "dist" / "d3.min.js",
        f"{cdn}/jquery/2.0.0/jquery.min.js": VENDOR / "jquery-2.1.0" / "dist" / "jquery.min.js",
    }


def circuitsvis_bundle() -> pathlib.Path:
    out = subprocess.run([str(CIRCUITSVIS_PYTHON), "-c", "import circuitsvis, os; print(os.path.dirname(circuitsvis.__file__))"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return pathlib.Path(out.stdout.strip()) / "dist" / "cdn" / "iife.js"


def circuitsvis_module() -> str:
    """The wheel's browser bundle (it defines the global CircuitsVis) as the ES module the page imports."""
    names = ("render", "AttentionHeads")
    return circuitsvis_bundle().read_text() + "".join(f"\nexport const {n} = CircuitsVis.{n};" for n in names)


# -- the browser (child process) ----------------------------------------------------------------------
PAGE_PROBE = """(() => {
  const bench = (window.__bench = { draws: 0 });
  const proto = CanvasRenderingContext2D.prototype;
  for (const name of ["fillRect", "strokeRect", "clearRect", "fill", "stroke", "drawImage", "putImageData", "fillText", "strokeText"]) {
    const original = proto[name];
    proto[name] = function () { bench.draws++; return original.apply(this, arguments); };
  }
  const inked = () => {
    if (document.querySelector("svg line")) return true;
    for (const canvas of document.querySelectorAll("canvas")) {
      const context = canvas.width && canvas.height && canvas.getContext("2d");
      if (!context) continue;
      let data;
      try { data = context.getImageData(0, 0, canvas.width, canvas.height).data; } catch { return true; }  // tainted: an image was drawn
      for (let i = 3; i < data.length; i += 4) if (data[i] > 0) return true;
    }
    return false;
  };
  let seen = 0;
  const watch = () => requestAnimationFrame(() => {
    if ((bench.draws !== seen || document.querySelector("svg line")) && inked()) {
      requestAnimationFrame(() => { bench.firstPaint = performance.now(); });
      return;
    }
    seen = bench.draws;
    watch();
  });
  watch();
  // One timed interaction: from the event's arrival to the first frame rendered after the last canvas call.
  bench.arm = (type, quietMs, limitMs) => {
    bench.settled = new Promise((resolve) => {
      setTimeout(() => resolve(null), limitMs);
      window.addEventListener(type, () => {
        const start = performance.now();
        let end = null, draws = bench.draws;
        const frame = () => requestAnimationFrame(() => setTimeout(() => {
          const now = performance.now();
          if (end === null || bench.draws !== draws) { draws = bench.draws; end = now; }
          if (now - end >= quietMs) resolve(end - start);
          else frame();
        }));
        frame();
      }, { capture: true, once: true });
    });
  };
})();"""


def timed(page, event: str, act) -> float:
    page.evaluate("([type, quiet, limit]) => window.__bench.arm(type, quiet, limit)", [event, QUIET_MS, FRAME_LIMIT_MS])
    act()
    ms = page.evaluate("() => window.__bench.settled")
    if ms is None:
        raise TimeoutError(f"no frame within {FRAME_LIMIT_MS / 1000:.0f} s of the {event}")
    return ms


def hover_points(locator, count: int) -> list[tuple[float, float]]:
    points = []
    for i in range(1, count + 1):
        box = locator.nth(i).bounding_box()
        points.append((box["x"] + box["width"] / 2, box["y"] + box["height"] / 2))
    return points


def drive_attnwidget(page) -> dict:
    tokens = page.get_by_role("group", name="Query tokens").locator(".aw-tok")
    chip = lambda head: page.locator(f'.aw-chip[data-head="{head}"]')
    layer = page.get_by_label("Layer", exact=True)
    return {
        "hover_ms": lambda: hover(page, "mouseover", hover_points(tokens, 6)),
        "head_switch_ms": lambda: [timed(page, "click", chip(head).click) for head in (1, 2, 3)],
        "layer_switch_ms": lambda: [timed(page, "change", lambda n=n: layer.select_option(str(n))) for n in (1, 2, 3)],
    }


def drive_bertviz(page) -> dict:
    boxes = page.locator("#vis svg > g").last.locator("rect")
    layer = page.locator("select#layer")
    return {
        "hover_ms": lambda: hover(page, "mouseover", hover_points(page.locator("#left text"), 6)),
        "head_switch_ms": lambda: [timed(page, "click", boxes.nth(head).dblclick) for head in (1, 2, 3)],
        "layer_switch_ms": lambda: [timed(page, "change", lambda n=n: layer.select_option(str(n))) for n in (1, 2, 3)],
    }


def drive_circuitsvis(page) -> dict:
    def cells() -> list[tuple[float, float]]:
        # The zoomed pattern is the largest canvas; its cells along the diagonal, within the viewport.
        widths = page.locator("canvas").evaluate_all("canvases => canvases.map(c => c.width)")
        box = page.locator("canvas").nth(widths.index(max(widths))).bounding_box()
        points = [(box["x"] + f * box["width"], box["y"] + f * box["height"]) for f in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)]
        return [(x, y) for x, y in points if y < VIEWPORT["height"]]

    head = lambda h: page.get_by_text(f"Head {h}", exact=True).first
    return {
        "hover_ms": lambda: hover(page, "mousemove", cells()),
        "head_switch_ms": lambda: [timed(page, "click", head(h).click) for h in (1, 2, 3)],
        "layer_switch_ms": lambda: "n/a: one layer per page",
    }


def hover(page, event: str, points: list[tuple[float, float]]) -> list[float]:
    page.mouse.move(*points[0])  # the first token: the timed moves each enter a new one
    page.wait_for_timeout(QUIET_MS)
    return [timed(page, event, lambda p=point: page.mouse.move(*p)) for point in points[1:]]


DRIVERS = {EXPORT: drive_attnwidget, BERTVIZ: drive_bertviz, CIRCUITSVIS: drive_circuitsvis}


def browse(tool: str, path: pathlib.Path, paint_limit_s: float) -> None:
    from playwright.sync_api import sync_playwright

    local = {url: file.read_bytes() for url, file in bertviz_scripts().items()} if tool == BERTVIZ else {}
    if tool == CIRCUITSVIS:
        local = {"https://unpkg.com/circuitsvis@1.43.3/dist/cdn/esm.js": circuitsvis_module().encode()}
    refused: list[str] = []

    def route(request_route) -> None:
        url = request_route.request.url
        if url.startswith("file:"):
            request_route.continue_()
        elif url in local:
            request_route.fulfill(body=local[url], content_type="text/javascript",
                                  headers={"Access-Control-Allow-Origin": "*"})  # fmt: skip
        else:
            refused.append(url)
            request_route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport=VIEWPORT)
        context.add_init_script(PAGE_PROBE)
        context.route("**/*", route)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        deadline = time.monotonic() + paint_limit_s
        try:
            page.goto(path.as_uri(), wait_until="commit", timeout=paint_limit_s * 1000)
            page.wait_for_function("() => window.__bench.firstPaint !== undefined", polling=100,
                                   timeout=max(1.0, deadline - time.monotonic()) * 1000)  # fmt: skip
        except Exception:  # noqa: BLE001 -- Playwright's TimeoutError, or the page's own failure
            reason = f"no paint within {paint_limit_s:.0f} s" + (f" (page error: {errors[0][:120]})" if errors else "")
            emit(first_paint_ms=reason, refused=refused, **{key: "not measured: no paint" for key in BROWSER_METRICS[1:]})
            os._exit(0)  # closing waits for a renderer still busy with the page; the parent ends the process group
        emit(first_paint_ms=page.evaluate("() => window.__bench.firstPaint"))
        cdp = context.new_cdp_session(page)

        def heap_mb() -> float:
            cdp.send("HeapProfiler.collectGarbage")
            usage = cdp.send("Runtime.getHeapUsage")
            return sum(usage.get(key, 0) for key in ("usedSize", "embedderHeapUsedSize", "backingStorageSize")) / 2**20

        heap = heap_mb()
        emit(heap_mb=heap)
        for metric, run in DRIVERS[tool](page).items():
            try:
                values = run()
                emit(**{metric: statistics.median(values) if isinstance(values, list) else values, f"{metric}_all": values})
            except Exception as error:  # noqa: BLE001 -- the cell says what failed; the other measurements go on
                emit(**{metric: f"failed: {type(error).__name__}: {str(error).splitlines()[0][:160]}"})
        emit(heap_mb=max(heap, heap_mb()), refused=refused, page_errors=errors[:3])
        browser.close()


# -- running steps with limits (parent) --------------------------------------------------------------------
def tree_rss_bytes(root: int) -> int:
    """Resident bytes of `root` and every process under it."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    total = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/statm") as statm:
                total += int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    return total


def parse_results(lines) -> dict:
    """The RESULT lines a step printed, merged in order (a later value of a key wins)."""
    merged: dict = {}
    for line in lines:
        if line.startswith("RESULT "):
            merged.update(json.loads(line[len("RESULT "):]))
    return merged


def run_step(command: list[str], limit_s: float, memory_gb: float, env: dict | None = None) -> tuple[dict, str | None, float]:
    """(what the step printed, why it did not finish or None, peak GB of its process tree)."""
    stderr_path = OUT / "step.stderr"
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True,
                                   start_new_session=True, env=env, cwd=ROOT / "benchmarks")  # fmt: skip
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
        reader.start()
        start, peak, failure = time.monotonic(), 0, None
        while process.poll() is None:
            peak = max(peak, tree_rss_bytes(process.pid))
            if peak > memory_gb * 2**30:
                failure = f"over {memory_gb:g} GB"
            elif time.monotonic() - start > limit_s:
                failure = f"did not finish within {limit_s:.0f} s"
            if failure:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                break
            time.sleep(0.25)
        try:
            os.killpg(process.pid, signal.SIGKILL)  # whatever the step left running (a browser it did not close)
        except ProcessLookupError:
            pass
        reader.join(timeout=10)
    if failure is None and process.returncode != 0:
        errors = [line for line in stderr_path.read_text().splitlines() if line.strip()]
        failure = "failed: " + (errors[-1][:200] if errors else f"exit code {process.returncode}")
    return parse_results(lines), failure, peak / 2**30


# -- the table ------------------------------------------------------------------------------------------
def cell(value, base, unit: str) -> str:
    """A value with its ratio to attnwidget export's, or the text saying why there is none."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    shown = {"B": lambda v: f"{v / 1e6:,.2f} MB" if v >= 1e5 else f"{v / 1e3:,.1f} kB",
             "s": lambda v: f"{v:,.1f} s", "ms": lambda v: f"{v:,.0f} ms", "MB": lambda v: f"{v:,.0f} MB"}[unit](value)
    if isinstance(base, (int, float)) and base > 0:
        return f"{shown} ({value / base:,.1f}x)"
    return shown


def markdown_table(rows: list[dict]) -> str:
    """One line per input and tool; ratios against attnwidget export on the same input."""
    header = ["input", "tool", *(column for column, _ in METRICS.values())]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        base = next((r for r in rows if r["input"] == row["input"] and r["tool"] == EXPORT), {})
        cells = [cell(row.get(key), base.get(key) if row["tool"] != EXPORT else None, unit) for key, (_, unit) in METRICS.items()]
        # A reason repeated in the next cells (not run, killed, no paint) is said once.
        cells = [text if i == 0 or text != cells[i - 1] or not isinstance(row.get(key), str) else ""
                 for i, (text, key) in enumerate(zip(cells, METRICS))]  # fmt: skip
        lines.append("| " + " | ".join([row["input"], row["tool"], *cells]) + " |")
    return "\n".join(lines)


# -- the run (parent) -------------------------------------------------------------------------------------
def step(args, what: str, name: str, python: str | None = None, env: dict | None = None, limit=None):
    command = [python or sys.executable, __file__, "--step", what, name, "--paint-limit", str(args.paint_limit)]
    return run_step(command, limit or args.build_limit, args.memory_gb, env)


def browse_row(args, row: dict, tool: str, name: str) -> str | None:
    """Browser cells of `row`; the reason the page did not paint, if it did not."""
    results, failure, peak = run_step(
        [sys.executable, __file__, "--browse", tool, str(page_path(tool, name)), "--paint-limit", str(args.paint_limit)],
        args.paint_limit + args.interaction_limit, args.memory_gb,
    )  # fmt: skip
    row.update({key: results[key] for key in results if key in BROWSER_METRICS or key.endswith("_all") or key in ("refused", "page_errors")})
    row["browser_peak_gb"] = peak
    for key in BROWSER_METRICS:
        row.setdefault(key, failure or "failed: no result")
    painted = isinstance(row.get("first_paint_ms"), (int, float))
    return None if painted else str(row.get("first_paint_ms"))


def fail_row(row: dict, reason: str) -> None:
    for key in METRICS:
        if key not in row:
            row[key] = reason


def run_attnwidget(args, name: str) -> list[dict]:
    results, failure, peak = step(args, "attnwidget", name)
    rows = []
    for tool, key in ((EXPORT, "export"), (WIDGET, "widget")):
        row = {"tool": tool, "input": name, **results.get(key, {}), "build_peak_gb": peak}
        if key not in results:
            fail_row(row, failure or "failed: no result")
        elif tool == EXPORT:
            browse_row(args, row, tool, name)
        else:
            row.update({metric: "n/a: needs a kernel (ui-tests)" for metric in BROWSER_METRICS})
        rows.append(row)
    return rows


def run_bertviz(args, name: str) -> tuple[dict, str | None]:
    results, failure, peak = step(args, "bertviz", name)
    row = {"tool": BERTVIZ, "input": name, **results.get("bertviz", {}), "build_peak_gb": peak}
    if "bertviz" not in results:
        fail_row(row, failure or "failed: no result")
        return row, failure
    return row, browse_row(args, row, BERTVIZ, name)


def run_circuitsvis(args, name: str) -> tuple[dict, str | None]:
    row = {"tool": CIRCUITSVIS, "input": name}
    attention, failure, peak = step(args, "circuitsvis-attention", name)
    if failure is None:
        env = {**os.environ, "PYTHONPATH": ""}
        built, failure, peak = step(args, "circuitsvis", name, python=str(CIRCUITSVIS_PYTHON), env=env)
        if failure is None:
            attention_s = attention["attention_s"]
            row.update(python_s=attention_s + built["build_s"], python_parts=[attention_s, built["build_s"]],
                       up_front_bytes=built["bytes"] + circuitsvis_bundle().stat().st_size,
                       version=built["version"])  # fmt: skip
            row["total_bytes"] = row["up_front_bytes"]
    for suffix in ("npy", "json"):
        (OUT / f"circuitsvis-{name}.{suffix}").unlink(missing_ok=True)
    row["build_peak_gb"] = peak
    if failure:
        fail_row(row, failure)
        return row, failure
    return row, browse_row(args, row, CIRCUITSVIS, name)


def limited(reason: str | None) -> bool:
    return reason is not None and ("within" in reason or "over" in reason)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", nargs="+", choices=list(INPUTS), default=list(INPUTS))
    parser.add_argument("--tools", nargs="+", choices=["attnwidget", "bertviz", "circuitsvis"],
                        default=["attnwidget", "bertviz", "circuitsvis"])  # fmt: skip
    parser.add_argument("--build-limit", type=float, default=240, help="seconds for one Python build step")
    parser.add_argument("--paint-limit", type=float, default=90, help="seconds from navigation to first paint")
    parser.add_argument("--interaction-limit", type=float, default=120, help="seconds for the timed interactions")
    parser.add_argument("--memory-gb", type=float, default=6, help="resident memory of one step's process tree")
    parser.add_argument("--table", action="store_true", help="print the table of the last run's results.json again")
    parser.add_argument("--step", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--browse", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        what, name = args.step
        {"attnwidget": build_attnwidget, "bertviz": build_bertviz, "circuitsvis-attention": circuitsvis_attention,
         "circuitsvis": build_circuitsvis}[what](name)  # fmt: skip
        return
    if args.browse:
        browse(args.browse[0], pathlib.Path(args.browse[1]), args.paint_limit)
        return
    if args.table:
        results = json.loads((OUT / "results.json").read_text())
        print(markdown_table(results["rows"]) + "\n\n" + results["limits"])
        return

    missing = [str(p) for p in (CIRCUITSVIS_PYTHON, *bertviz_scripts().values()) if not p.exists()]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: run `bash benchmarks/setup_tools_benchmark.sh {sys.executable}`")
    PAGES.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    rows: list[dict] = []
    stopped: dict[tuple[str, str], str] = {}  # (tool, model) -> the input it did not finish
    for name in args.inputs:
        model = INPUTS[name][0]
        print(f"[{time.monotonic() - started:6.0f} s] {name}", file=sys.stderr, flush=True)
        saved_capture(name).unlink(missing_ok=True)
        if "attnwidget" in args.tools:
            rows.extend(run_attnwidget(args, name))
        for tool, run in (("bertviz", run_bertviz), ("circuitsvis", run_circuitsvis)):
            if tool not in args.tools:
                continue
            label = BERTVIZ if tool == "bertviz" else CIRCUITSVIS
            if (tool, model) in stopped:
                row = {"tool": label, "input": name}
                fail_row(row, f"not run: did not finish on {stopped[tool, model]}")
            else:
                row, reason = run(args, name)
                if limited(reason):
                    stopped[tool, model] = name
            rows.append(row)
        saved_capture(name).unlink(missing_ok=True)
        print(markdown_table([r for r in rows if r["input"] == name]), file=sys.stderr, flush=True)

    table = markdown_table(rows)
    limits = (f"Limits: {args.build_limit:.0f} s per Python step, {args.paint_limit:.0f} s to first paint, "
              f"{args.interaction_limit:.0f} s for the interactions, {args.memory_gb:g} GB per step's process tree. "
              f"Whole run: {time.monotonic() - started:.0f} s on {os.cpu_count()} cores (shared machine).")  # fmt: skip
    (OUT / "results.json").write_text(json.dumps({"limits": limits, "rows": rows}, indent=1))
    (OUT / "results.md").write_text(table + "\n\n" + limits + "\n")
    print(table + "\n\n" + limits)


if __name__ == "__main__":
    main()
