"""What the derived stacks (rollout and word level, capturing/derived.py) add to opening a widget, side by side.

For one capture, `AttentionWidget.from_capture(capture, derived=False)` and `from_capture(capture)` (derived stacks
added, the default) are built in turn, each computing its opening state (thumbnails, preloaded heads); reported:
seconds to build it, the opening state's binary bytes, and how many heads it has. Then the rollout through the last
layer is read twice from the widget's rollout stack (first read: every layer multiplied; second: kept) against
`Capture.rollout`, which starts over each time.

Captures: the real MiniLM (6 x 12) at 128 and 512 tokens, and a random 32 x 32 Llama (GQA 8) at 181 tokens, the
largest inputs that get derived stacks unasked (`derived.MAX_DERIVED_VALUES`). One run of an earlier version whose
limit was 1024 tokens opened the Llama at 1024 tokens in 95 s with derived stacks against 8 s without.

    python benchmarks/derived_benchmark.py
    python benchmarks/derived_benchmark.py --no-llama
"""

from __future__ import annotations

import argparse
import time


def minilm_capture(tokens: int):
    from payload_benchmark import LONG_TEXT, minilm

    from attnwidget import capture

    model, tokenizer = minilm()
    ids = tokenizer(LONG_TEXT * 8, truncation=True, max_length=tokens)["input_ids"]
    return capture(model, tokenizer, tokenizer.decode(ids[1:-1]), progress=False)


def llama_capture(tokens: int):
    from long_capture_benchmark import llama

    from attnwidget import capture

    model, tokenizer, text = llama(tokens)
    return capture(model, tokenizer, text, progress=False)


def opened(capture, **options) -> tuple[float, int, int, object]:
    """(seconds, opening bytes, heads, widget) of a widget of `capture`, its opening state computed."""
    from attnwidget import AttentionWidget

    start = time.perf_counter()
    widget = AttentionWidget.from_capture(capture, progress=False, **options)
    state = widget.get_state()  # computes the thumbnails and the preloaded heads, as the comm's opening does
    seconds = time.perf_counter() - start
    size = sum(len(value) for name in ("_chunks", "_thumbs", "_qk") for value in state[name].values())
    heads = sum(widget.capture.num_layers(s) * widget.capture.num_heads(s) for s in widget.capture.stacks)
    return seconds, size, heads, widget


def timed(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-llama", action="store_true", help="skip the 32 x 32 Llama")
    args = parser.parse_args()
    cases = [("MiniLM, 128 tokens", lambda: minilm_capture(128)), ("MiniLM, 512 tokens", lambda: minilm_capture(512))]
    if not args.no_llama:
        cases.append(("Llama 32 x 32, 181 tokens", lambda: llama_capture(181)))
    print("| input | widget | open, s | opening bytes | heads | rollout through the last layer, s: from the stack after opening / again; Capture.rollout |")
    print("|---|---|---:|---:|---:|---|")
    for name, make in cases:
        capture = make()
        plain = opened(capture, derived=False)
        print(f"| {name} | derived=False | {plain[0]:.2f} | {plain[1]:,} | {plain[2]:,} | |")
        seconds, size, heads, widget = opened(capture)
        last = capture.num_layers() - 1
        first = timed(lambda: widget.capture.head_attention(last, 0, "self·rollout"))
        widget.capture.head_attention(0, 0, "self·words")  # another head in between, as a view would ask
        second = timed(lambda: widget.capture.head_attention(last, 0, "self·rollout"))
        direct = timed(lambda: capture.rollout("self", last))
        print(f"| | derived (default) | {seconds:.2f} ({seconds / plain[0]:.1f}x) | {size:,} ({size / plain[1]:.1f}x) "
              f"| {heads:,} | {first:.3f} / {second:.4f}, {direct:.3f} |")  # fmt: skip
        plain[3].close()
        widget.close()


if __name__ == "__main__":
    main()
