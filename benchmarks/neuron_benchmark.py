"""The neuron view's data at scale: one query-key record per head, and what an export with all of them weighs.

Run: python benchmarks/neuron_benchmark.py [--cases minilm llama] [--tokens 512] [--llama-tokens 4096]

- minilm: the real all-MiniLM-L6-v2 (6 layers x 12 heads, head_dim 32) on a long text cut to --tokens tokens.
  One head's record, as wire.py writes it (float32 q and k) and deflated + base64 as an export holds it; then the
  export with every head's neuron data (`export_page(..., size_budget=None)`), and what it would weigh under other
  encodings of q and k, each measured by encoding all 72 heads' q and k that way, deflating and base64-ing them:
  - float32: the contract (what the page holds today);
  - float16: q and k rounded to float16;
  - int8 per vector: each query and key vector scaled by its largest magnitude to int8, with a float32 scale;
  and each with or without the attention chunks, which the browser could derive from the records (softmax of
  q·k × scale + bias) instead of reading them. For the lossy encodings: the share of scores and softmax values
  whose three displayed significant digits differ from the float32 ones (every head, query and key), and the
  largest error of a softmax value.
- llama: the random 32-layer x 32-head Llama (8 key/value heads, head_dim 8) at --llama-tokens tokens. The bytes
  of one head's record (its causal mask as 2n - 1 diagonals), and the seconds from the browser's request to the
  reply that carries it (`serving.answer_request`): the first request (which works out the form of the bias every
  layer shares, 16.8 million values at 4096 tokens) and the median of later ones. Then in headless Chromium (/usr/bin/chromium,
  network refused), an export of the capture's first layer alone (its 32 heads' records, and the attention heads
  the default budget holds) opened on the neuron view of head 0's last query token: ms from the click on "Neuron"
  to the frame that shows its key rows, from a click on another head's chip to its rows, and per frame while
  scrolling the key rows (600 px each frame), with how many key rows are in the page.

Numbers are from one run on whatever machine runs it; time ratios only hold side by side in one run.
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
import time
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from payload_benchmark import LONG_TEXT, minilm  # noqa: E402  (sibling scripts)

MB = 1e6
ZLIB_LEVEL = 6  # export.py's


def page_value(data: bytes) -> int:
    """Bytes a binary value takes in an exported page: deflated, then base64."""
    return len(base64.b64encode(zlib.compress(data, ZLIB_LEVEL)))


# -- encodings of q and k the export could use ------------------------------------------------------
def as_float16(vectors: np.ndarray) -> tuple[bytes, np.ndarray]:
    half = vectors.astype("<f2")
    return half.tobytes(), half.astype(np.float32)


def as_int8_per_vector(vectors: np.ndarray) -> tuple[bytes, np.ndarray]:
    scale = np.abs(vectors).max(axis=-1, keepdims=True) / 127
    scale[scale == 0] = 1
    codes = np.rint(vectors / scale).astype(np.int8)
    scale = scale.astype("<f4")
    return codes.tobytes() + scale.tobytes(), codes.astype(np.float32) * scale


def as_float32(vectors: np.ndarray) -> tuple[bytes, np.ndarray]:
    return vectors.astype("<f4").tobytes(), vectors


def as_float32_byte_planes(vectors: np.ndarray) -> tuple[bytes, np.ndarray]:
    """Lossless: the float32 bytes regrouped by position (all lowest bytes, ..., all sign-and-exponent bytes), which
    deflate finds more repeats in."""
    planes = np.ascontiguousarray(vectors.astype("<f4").view(np.uint8).reshape(-1, 4).T)
    return planes.tobytes(), vectors


ENCODINGS = {
    "float32": as_float32,
    "float32 planes": as_float32_byte_planes,
    "float16": as_float16,
    "int8 per vector": as_int8_per_vector,
}


def shown_digits(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mantissa, exponent) of each value to three significant digits, as the neuron view shows it."""
    magnitude = np.abs(values)
    exponent = np.floor(np.log10(np.where(magnitude > 0, magnitude, 1)))
    mantissa = np.rint(values / 10 ** (exponent - 2))
    carried = np.abs(mantissa) >= 1000  # 9.995 shows as 10.0
    return np.where(carried, np.rint(mantissa / 10), mantissa), exponent + carried


def differs(exact: np.ndarray, lossy: np.ndarray) -> int:
    (m1, e1), (m2, e2) = shown_digits(exact), shown_digits(lossy)
    return int(((m1 != m2) | ((e1 != e2) & (m1 != 0))).sum())


def softmax(scores: np.ndarray) -> np.ndarray:
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return weights / weights.sum(axis=-1, keepdims=True)


def minilm_case(tokens: int) -> None:
    from attnwidget import AttentionWidget, wire
    from attnwidget.export import export_page

    model, tokenizer = minilm()
    ids = tokenizer(LONG_TEXT * 8, truncation=True, max_length=tokens)["input_ids"]
    widget = AttentionWidget(model, tokenizer.decode(ids[1:-1]), tokenizer=tokenizer)
    capture = widget.capture
    n = len(capture.tokens)
    assert n == tokens, n
    heads = wire.all_head_keys(capture)
    record = wire.query_key_record(capture, "self", 0, 0)
    print(f"MiniLM, {n} tokens: one head's record {len(record):,} bytes, {page_value(record):,} in a page")

    page = export_page(capture, widget.selection, size_budget=None)
    full = len(page.html.encode())
    chunks = sum(page_value(wire.head_chunk(capture, *wire.parse_head_key(key))[0]) for key in heads)
    records = sum(page_value(wire.query_key_record(capture, *wire.parse_head_key(key))) for key in heads)
    print(f"export with every head's attention and neuron data: {full / MB:.2f} MB "
          f"(attention chunks {chunks / MB:.2f} MB, records {records / MB:.2f} MB)\n")

    print(f"{'q and k as':<18}{'records MB':>11}{'+ chunks MB':>13}{'no chunks MB':>14}"
          f"{'scores off':>12}{'softmax off':>13}{'max softmax error':>19}")
    for name, encode in ENCODINGS.items():
        size, score_off, weight_off, worst, count = 0, 0, 0, 0.0, 0
        for stack, layer, head in map(wire.parse_head_key, heads):
            arrays = wire.query_key_arrays(capture, stack, layer, head)
            query_bytes, query = encode(arrays["query"])
            key_bytes, key = encode(arrays["key"])
            rest = b"".join(array.tobytes() for name_, array in arrays.items() if name_ not in ("query", "key"))
            size += page_value(query_bytes + key_bytes + rest) + 200  # a header of ~150 bytes, deflated, and the key
            scale = capture.layer_scale(layer, stack)
            exact = arrays["query"].astype(np.float64) @ arrays["key"].astype(np.float64).T * scale
            lossy = query.astype(np.float64) @ key.astype(np.float64).T * scale
            score_off += differs(exact, lossy)
            exact_weights, lossy_weights = softmax(exact), softmax(lossy)
            weight_off += differs(exact_weights, lossy_weights)
            worst = max(worst, float(np.abs(exact_weights - lossy_weights).max()))
            count += exact.size
        without = full - chunks - records + size
        print(f"{name:<18}{size / MB:>11.2f}{(without + chunks) / MB:>13.2f}{without / MB:>14.2f}"
              f"{score_off / count:>12.2%}{weight_off / count:>13.2%}{worst:>19.2g}")
    print(f"\n(scores and softmax values compared: {count:,}; 'off' counts a value whose 3 shown digits differ)")


def llama_case(tokens: int) -> None:
    from long_capture_benchmark import llama

    import attnwidget
    from attnwidget import serving, wire

    model, tokenizer, text = llama(tokens)
    start = time.perf_counter()
    capture = attnwidget.capture(model, tokenizer, text, progress=False)
    print(f"\nLlama 32 x 32, {tokens} tokens: captured in {time.perf_counter() - start:.0f} s")

    def answer(layer: int, head: int) -> tuple[float, bytes]:
        request = {"kind": "request", "id": 1, "what": "query_key", "stack": "self", "layer": layer, "head": head}
        begin = time.perf_counter()
        reply, buffers = serving.answer_request(capture, request)
        seconds = time.perf_counter() - begin
        assert "error" not in reply, reply
        return seconds, buffers[0]

    first, record = answer(0, 0)  # the first request of the capture: its bias's form is worked out
    _, arrays = wire.decode_query_key_record(record)
    forms = {name: array.shape for name, array in arrays.items()}
    print(f"one head's record: {len(record):,} bytes {forms}; one message at most {wire.MAX_MESSAGE_BYTES:,}")
    later = [answer(layer, head)[0] for layer in (7, 8, 9) for head in (1, 5, 9, 13, 17, 21, 25, 29)]
    print(f"request to reply of one head: the first {first * 1e3:.0f} ms, "
          f"later {statistics.median(later) * 1e3:.1f} ms (median of {len(later)})")
    browser_case(capture, f"/tmp/neuron-benchmark-llama-{tokens}.html")


SCROLL_FRAMES = """(steps) => new Promise((resolve) => {
  // One scroll step per frame: the time between frames is what scrolling costs (16.7 ms at 60 Hz when nothing waits).
  const box = document.querySelector(".aw-neuronview .aw-scroll");
  const stamps = [];
  const step = (now) => {
    stamps.push(now);
    if (stamps.length > steps) {
      const times = stamps.slice(1).map((t, i) => t - stamps[i]);
      return resolve({ times, rows: document.querySelectorAll(".aw-neuron-rows .aw-nrow").length });
    }
    box.scrollTop += 600;
    requestAnimationFrame(step);
  };
  requestAnimationFrame(step);
})"""

UNTIL_ROWS = """async ([selector, head]) => {
  const start = performance.now();
  document.querySelector(selector).click();
  const caption = new RegExp(`· head ${head}( |$)`);
  const shown = () => caption.test(document.querySelector(".aw-neuron-caption")?.textContent ?? "")
    && document.querySelector(".aw-neuron-rows .aw-nrow[data-softmax]");
  while (!shown()) {
    if (performance.now() - start > 60000) throw new Error(`head ${head} not shown within 60 s`);
    await new Promise((resolve) => requestAnimationFrame(resolve));
  }
  await new Promise((resolve) => requestAnimationFrame(resolve));
  return performance.now() - start;
}"""


def browser_case(capture, path: str) -> None:
    """The neuron view of an export of the capture's first layer, in headless Chromium."""
    from playwright.sync_api import sync_playwright

    from attnwidget import AttentionWidget
    from attnwidget.capturing import Capture, StackRecord

    stack = capture.stack("self")
    first_layer = Capture(
        list(capture.sides.values()), [StackRecord("self", "input", "input", stack.layers[:1], stack.kv_head_of, [0])]
    )
    n = len(capture.tokens)
    widget = AttentionWidget.from_capture(first_layer, view="head", token=n - 1)
    widget.to_html(path)
    page_bytes = os.path.getsize(path)
    print(f"export of layer 0 ({page_bytes / MB:.1f} MB) in Chromium:")
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"]  # fmt: skip
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.route("**/*", lambda route: route.abort() if not route.request.url.startswith("file:") else route.continue_())
        page.goto(f"file://{os.path.abspath(path)}")
        page.wait_for_selector(".aw-chips button")
        opened = page.evaluate(UNTIL_ROWS, ['.aw-tabs button[data-view="neuron"]', 0])
        switched = page.evaluate(UNTIL_ROWS, ['.aw-neuronview .aw-chips button[data-head="9"]', 9])
        scrolled = page.evaluate(SCROLL_FRAMES, 30)
        browser.close()
    times = scrolled["times"]
    print(f"  open the neuron view {opened:.0f} ms; another head {switched:.0f} ms; scrolling: median frame "
          f"{statistics.median(times):.1f} ms, {sum(t > 20 for t in times)} of {len(times)} frames over 20 ms, "
          f"slowest {max(times):.0f} ms; {scrolled['rows']} of {n} key rows in the page")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=["minilm", "llama"], choices=["minilm", "llama"])
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--llama-tokens", type=int, default=4096)
    args = parser.parse_args()
    if "minilm" in args.cases:
        minilm_case(args.tokens)
    if "llama" in args.cases:
        llama_case(args.llama_tokens)


if __name__ == "__main__":
    main()
