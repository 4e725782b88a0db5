"""Time and memory of the analysis (docs/analysis.md) on a random 32-layer x 32-head Llama at up to 4096 tokens.

Run: python benchmarks/analysis_benchmark.py [--tokens 1024 4096] [--steps head score layer scores rollout words]
[--threads 1]

Each length runs in a fresh process, after building the model and capturing the text as
long_capture_benchmark.py does. Steps, side by side in that process:
- head: one head derived from the capture (`Capture.head_attention`), the cost every per-head analysis starts from;
- score: the scores of that one head (`analysis.scores.head_scores`), the head already derived;
- layer: `Capture.head_scores(layers=[31])`, the 32 heads of one layer, each derived then scored;
- scores: `Capture.head_scores()`, every head of every layer, one head in memory at a time;
- rollout: `Capture.rollout()` through all 32 layers;
- words: one head at word level (`Capture.word_attention`), words and head derived.
For each: seconds, the peak resident size during the step above the resident size before it (the high-water mark is
reset before each step), and the resident size after it.
"""

from __future__ import annotations

import argparse
import os
import json
import subprocess
import sys
import time

from capture_benchmark import _status_kib  # sibling scripts: on sys.path when run as a script
from long_capture_benchmark import _reset_peak, _src, llama

STEPS = ("head", "score", "layer", "scores", "rollout", "words")


def measure(n_tokens: int, steps: list[str]) -> dict[str, dict[str, float]]:
    import attnwidget
    from attnwidget.analysis.scores import head_scores

    model, tokenizer, text = llama(n_tokens)
    captured = attnwidget.capture(model, tokenizer, text, progress=False)
    del model
    results: dict[str, dict[str, float]] = {}

    def step(name, work):
        before = _status_kib("VmRSS") / 1024
        _reset_peak()
        start = time.perf_counter()
        value = work()
        results[name] = {
            "seconds": time.perf_counter() - start,
            "extra_peak_mib": _status_kib("VmHWM") / 1024 - before,
            "rss_mib": _status_kib("VmRSS") / 1024,
        }
        return value

    if "head" in steps or "score" in steps:
        head = step("head", lambda: captured.head_attention(31, 5))
        if "score" in steps:
            step("score", lambda: head_scores(head, same_side=True, bias=captured.bias(31)[0]))
        del head
    if "layer" in steps:
        step("layer", lambda: captured.head_scores(layers=[31], progress=False))
    if "scores" in steps:
        frame = step("scores", lambda: captured.head_scores(progress=False))
        results["scores"]["rows"] = len(frame)
    if "rollout" in steps:
        step("rollout", captured.rollout)
    if "words" in steps:
        step("words", lambda: captured.word_attention(31, 5))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is steadier on a busy machine)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # the fresh process of one length
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.one:
        print(json.dumps(measure(args.one, args.steps)))
        return
    print(f"random Llama, 32 layers x 32 heads (8 kv heads), hidden 256; CPU, {args.threads} torch threads")
    print(f"{'tokens':>6} | {'step':>8} | {'seconds':>8} | {'extra peak MiB':>14} | {'after MiB':>9}")
    for n_tokens in args.tokens:
        try:
            results = fresh_process(n_tokens, args)
        except RuntimeError as error:
            print(f"{n_tokens:>6} | failed: {error}", flush=True)
            continue
        for name, numbers in results.items():
            rows = f" | {numbers['rows']} rows" if "rows" in numbers else ""
            seconds, extra, after = numbers["seconds"], numbers["extra_peak_mib"], numbers["rss_mib"]
            print(f"{n_tokens:>6} | {name:>8} | {seconds:>8.2f} | {extra:>14.0f} | {after:>9.0f}{rows}", flush=True)


def fresh_process(n_tokens: int, args) -> dict[str, dict[str, float]]:
    """The steps of one length, measured in a process of their own, so its high-water mark is theirs alone."""
    command = [sys.executable, __file__, "--one", str(n_tokens), "--threads", str(args.threads), "--steps", *args.steps]
    env = {**os.environ, "PYTHONPATH": _src(), "OMP_NUM_THREADS": str(args.threads)}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode:
        raise RuntimeError(done.stderr.strip().splitlines()[-1])
    return json.loads(done.stdout.strip().splitlines()[-1])

if __name__ == "__main__":
    main()
