"""What an export of MiniLM at 512 tokens with every head's neuron data would weigh under exact encodings (issue 10,
point 6: the target is 6 MB; point 5 requires every displayed digit of the neuron view to equal Python's).

Run: python benchmarks/export_size_options.py [--tokens 512]

On the real all-MiniLM-L6-v2 (6 layers x 12 heads, head_dim 32), every head's attention chunk and query-key record as
wire.py writes them, each deflated (export.py's zlib level) and base64-ed as the page holds it. Options, all lossless:
- the page today (`export_page(..., size_budget=None)`) and its parts: attention chunks, records, the rest;
- without the attention chunks, which the browser could compute from the records (softmax of q·k × scale + bias in
  float64, then round(p × 255)); how many bytes of such chunks differ from Python's, which the page would then have
  to carry as corrections;
- q and k byte-shuffled before deflate (every value's first byte, then every second byte, ...), row-major and
  column-major (one dimension over all tokens at a time), and with each row XORed with the one before;
- base85 instead of base64 for the text (5 characters per 4 bytes instead of 4 per 3);
- the floor of any coder that sees each byte plane of the float32 values alone: their order-0 entropy. The neuron
  view's hover readout shows scores and softmax to six digits, so no mantissa bit of q or k can be dropped: over
  262,144 scores per head some lie within float32 rounding of a six-digit boundary.

Numbers are one run's; sizes do not depend on the machine.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from payload_benchmark import LONG_TEXT, minilm  # noqa: E402  (sibling scripts)

MB = 1e6
ZLIB_LEVEL = 6  # export.py's


def deflated(data: bytes) -> int:
    return len(zlib.compress(data, ZLIB_LEVEL))


def as_base64(size: int) -> int:
    return 4 * ((size + 2) // 3)


def as_base85(size: int) -> int:
    return 5 * ((size + 3) // 4)


def byte_planes(values: np.ndarray) -> np.ndarray:
    """[4, count] bytes of little-endian float32 values: plane 0 the lowest mantissa byte, plane 3 sign and exponent."""
    return np.ascontiguousarray(values, dtype="<f4").reshape(-1).view(np.uint8).reshape(-1, 4).T


def shuffled(values: np.ndarray) -> bytes:
    return np.ascontiguousarray(byte_planes(values)).tobytes()


def xor_rows(values: np.ndarray) -> np.ndarray:
    """Each row's bits XORed with the row before (the first row as it is), as float32 again."""
    bits = np.ascontiguousarray(values, dtype="<f4").view(np.uint32)
    out = bits.copy()
    out[1:] ^= bits[:-1]
    return out.view("<f4")


def entropy_bytes(data: np.ndarray) -> float:
    counts = np.bincount(data.reshape(-1), minlength=256)
    share = counts[counts > 0] / data.size
    return float(-(share * np.log2(share)).sum() * data.size / 8)


def derived_chunk(arrays: dict[str, np.ndarray], scale: float) -> np.ndarray:
    """The attention bytes a browser would compute from a record: q·k summed in float64 one dimension at a time,
    × scale, + bias, softmax in float64, round(p × 255)."""
    query, key = arrays["query"].astype(np.float64), arrays["key"].astype(np.float64)
    scores = np.zeros((query.shape[0], key.shape[0]))
    for d in range(query.shape[1]):
        scores += np.outer(query[:, d], key[:, d])
    logits = scores * scale
    if "bias" in arrays:
        logits += arrays["bias"]
    if "bias_diagonal" in arrays or "bias_key" in arrays:
        raise NotImplementedError("MiniLM on one text has no bias terms; extend this for other models")
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    weights /= weights.sum(axis=1, keepdims=True)
    return np.rint(weights * 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=512)
    args = parser.parse_args()

    from attnwidget import AttentionWidget, wire
    from attnwidget.export import export_page

    model, tokenizer = minilm()
    ids = tokenizer(LONG_TEXT * 8, truncation=True, max_length=args.tokens)["input_ids"]
    widget = AttentionWidget(model, tokenizer.decode(ids[1:-1]), tokenizer=tokenizer)
    capture = widget.capture
    page = len(export_page(capture, widget.selection, size_budget=None).html.encode())

    heads = [wire.parse_head_key(key) for key in wire.all_head_keys(capture)]
    chunks = [wire.head_chunk(capture, *where)[0] for where in heads]
    records = [wire.query_key_record(capture, *where) for where in heads]
    chunk_text = sum(as_base64(deflated(chunk)) for chunk in chunks)
    record_text = sum(as_base64(deflated(record)) for record in records)
    rest = page - chunk_text - record_text  # viewer, CSS, meta, thumbnails, JSON keys

    sizes: dict[str, int] = {}  # deflated q and k of every head, per encoding
    planes_entropy = np.zeros(4)
    differing = cells = 0
    for where, chunk in zip(heads, chunks):
        arrays = wire.query_key_arrays(capture, *where)
        q, k = arrays["query"], arrays["key"]
        encodings = {
            "plain (today)": q.tobytes() + k.tobytes(),
            "byte-shuffled, row-major": shuffled(q) + shuffled(k),
            "byte-shuffled, column-major": shuffled(q.T) + shuffled(k.T),
            "rows XORed, byte-shuffled": shuffled(xor_rows(q)) + shuffled(xor_rows(k)),
        }
        for name, data in encodings.items():
            sizes[name] = sizes.get(name, 0) + deflated(data)
        both = np.concatenate([byte_planes(q), byte_planes(k)], axis=1)
        planes_entropy += [entropy_bytes(plane) for plane in both]
        derived = derived_chunk(arrays, capture.layer_scale(where[1], where[0]))
        python = np.frombuffer(chunk, np.uint8).reshape(derived.shape)
        differing += int((derived != python).sum())
        cells += python.size

    plain = sizes["plain (today)"]
    print(f"MiniLM, {args.tokens} tokens, {len(heads)} heads; page sizes in MB (deflate + base64 unless said)\n")
    print(f"{'the page today':<58}{page / MB:>8.2f}")
    print(f"{'  attention chunks':<58}{chunk_text / MB:>8.2f}")
    print(f"{'  query-key records':<58}{record_text / MB:>8.2f}")
    print(f"{'  the rest (viewer, meta, thumbnails)':<58}{rest / MB:>8.2f}")
    print(f"\n{'q and k encoding':<34}{'deflated':>10}{'with chunks':>12}{'no chunks':>12}{'no chunks, b85':>16}")
    records_deflated = sum(deflated(record) for record in records)
    for name, size in sizes.items():
        deflated_records = records_deflated - plain + size  # same headers, other q and k
        no_chunks = rest + as_base64(deflated_records)
        print(f"{name:<34}{size / MB:>10.2f}{(no_chunks + chunk_text) / MB:>12.2f}{no_chunks / MB:>12.2f}"
              f"{(rest + as_base85(deflated_records)) / MB:>16.2f}")
    floor = planes_entropy.sum()
    print(f"\norder-0 entropy of q and k per byte plane (low mantissa .. sign+exponent): "
          f"{', '.join(f'{p / MB:.2f}' for p in planes_entropy)} MB; sum {floor / MB:.2f} MB of {plain / MB:.2f} "
          f"deflated, {sum(len(r) for r in records) / MB:.2f} raw")
    print(f"  a page at that floor with no chunks and no text overhead at all: {(rest + floor) / MB:.2f} MB")
    print(f"\nchunks computed from the records in float64: {differing:,} of {cells:,} bytes differ from Python's "
          f"({differing / cells:.2e})")


if __name__ == "__main__":
    main()
