"""What value-weighted attention (docs/analysis.md) costs on a random 32-layer x 32-head Llama, side by side.

Run: PYTHONPATH=src python benchmarks/value_weighting_benchmark.py [--tokens 256 1024] [--rounds 2]

For each length, after building the model as long_capture_benchmark.py does, in one process and alternating
`--rounds` times:
- capture: `attnwidget.capture` as it is, and with `Recorder.record_values` replaced by a no-op (no values recorded);
  seconds, and the bytes the capture holds in value norms and in queries and keys;
- widget: `AttentionWidget.from_capture` of each, so with the value-weighted derived stacks and without them, both
  with every other derived stack (`derived.MAX_DERIVED_VALUES` lifted); seconds to open, which is mostly thumbnails.
"""

from __future__ import annotations

import argparse
import time

from long_capture_benchmark import llama  # a sibling script: on sys.path when run as a script


def capture_cost(model, tokenizer, text: str, with_values: bool) -> tuple[float, object]:
    import attnwidget
    from attnwidget.capturing import record

    original = record.Recorder.record_values
    if not with_values:
        record.Recorder.record_values = lambda *_: None
    try:
        start = time.perf_counter()
        captured = attnwidget.capture(model, tokenizer, text, progress=False)
        return time.perf_counter() - start, captured
    finally:
        record.Recorder.record_values = original


def widget_seconds(captured) -> float:
    from attnwidget import AttentionWidget
    from attnwidget.capturing import derived

    original = derived.MAX_DERIVED_VALUES
    derived.MAX_DERIVED_VALUES = 2**62  # every derived stack, at any length
    try:
        start = time.perf_counter()
        AttentionWidget.from_capture(captured)
        return time.perf_counter() - start
    finally:
        derived.MAX_DERIVED_VALUES = original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is steadier on a busy machine)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    print(f"random Llama, 32 layers x 32 heads (8 kv heads), hidden 256; CPU, {args.threads} torch threads")
    print(f"{'tokens':>6} | {'round':>5} | {'values':>6} | {'capture s':>9} | {'norms MiB':>9} | {'q+k MiB':>7} | "
          f"{'widget s':>8}")  # fmt: skip
    for n_tokens in args.tokens:
        model, tokenizer, text = llama(n_tokens)
        for round_ in range(args.rounds):
            for with_values in (True, False):
                seconds, captured = capture_cost(model, tokenizer, text, with_values)
                layers = captured.stack().layers
                norms = sum(0 if layer.value_norms is None else layer.value_norms.nbytes for layer in layers)
                query_key = sum(layer.query.nbytes + layer.key.nbytes for layer in layers)
                opened = widget_seconds(captured)
                print(f"{n_tokens:>6} | {round_:>5} | {'yes' if with_values else 'no':>6} | {seconds:>9.2f} | "
                      f"{norms / 2**20:>9.2f} | {query_key / 2**20:>7.1f} | {opened:>8.2f}", flush=True)  # fmt: skip
                del captured


if __name__ == "__main__":
    main()
