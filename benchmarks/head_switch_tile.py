"""What a head switch at 4096 tokens waits for in the kernel: the overview tile, derived for every key (as before) or
only for the keys each block of rows sees (a causal mask hides the rest), side by side in one run.

    python benchmarks/head_switch_tile.py [--tokens 4096] [--side 880] [--heads 16]

Input: the random Llama of head_view_frames.py (2 layers x 32 heads, 8 key-value heads, hidden 256, eager attention;
a head's tile costs the same whatever the number of layers) captured at --tokens. For each of --heads heads of layer
1, the tile the matrix view asks for on a switch to it (the whole map max-pooled to --side x --side: 880 in the Lab
ui-test's page), through `serving.answer_request` as the widget answers the browser, once each way, the order
alternating from head to head. Reported: wall and CPU milliseconds (median and worst), and whether both ways gave
the same bytes. The browser adds the message's transfer, decoding and one paint to these.
The machine may be shared: compare the two columns of one run, not runs.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import time
from unittest import mock

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(pathlib.Path(__file__).parent))
from head_view_frames import capture_input  # noqa: E402  (sibling script)


def main() -> None:
    from attnwidget import serving
    from attnwidget.capturing.result import LayerRecord

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--side", type=int, default=880)
    parser.add_argument("--heads", type=int, default=16)
    args = parser.parse_args()

    capture = capture_input("llama", args.tokens)
    n = len(capture.tokens)
    every_key = mock.patch.object(LayerRecord, "_keys_seen", lambda record, *_: record.key.shape[1])

    def tile(head: int) -> tuple[float, float, bytes]:
        request = {"kind": "request", "id": 1, "what": "tile", "stack": "self", "layer": 1, "head": head,
                   "q0": 0, "q1": n, "k0": 0, "k1": n, "rows": args.side, "columns": args.side, "pooling": "max"}  # fmt: skip
        wall, cpu = time.perf_counter(), time.process_time()
        message, buffers = serving.answer_request(capture, request)
        assert "error" not in message, message
        return (time.perf_counter() - wall) * 1e3, (time.process_time() - cpu) * 1e3, buffers[0]

    tile(0)  # the first answer of the process pays for imports and first allocations
    results: dict[str, list[tuple[float, float]]] = {"every key": [], "keys seen": []}
    same = True
    for head in range(1, args.heads + 1):
        order = ["every key", "keys seen"] if head % 2 else ["keys seen", "every key"]
        answers = {}
        for way in order:
            with every_key if way == "every key" else mock.patch.dict({}):
                wall, cpu, data = tile(head)
            results[way].append((wall, cpu))
            answers[way] = data
        same = same and answers["every key"] == answers["keys seen"]

    print(f"overview tile of one head, {n} tokens pooled to {args.side} x {args.side}, {args.heads} heads each way; "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}; machine shared")  # fmt: skip
    print(f"{'ms':<16} | {'every key (before)':<22} | {'keys seen (now)':<22}")
    for index, name in ((0, "wall"), (1, "CPU")):
        cells = []
        for way in results:
            values = [r[index] for r in results[way]]
            cells.append(f"{statistics.median(values):6.0f} (max {max(values):5.0f})")
        print(f"{name:<16} | {cells[0]:<22} | {cells[1]:<22}")
    print(f"same bytes both ways: {same}")


if __name__ == "__main__":
    main()
