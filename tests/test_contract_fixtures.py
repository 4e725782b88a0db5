"""The golden fixture of the data contract: bytes Python writes, which vitest decodes.

`tests/fixtures/contract/` holds a small meta, the attention chunks of one layer's heads (one after
the other), that layer's thumbnails, its heads' query-key records (`query_key_<head>.bin`) and one head's top keys
made by `wire.py`, and `expected.json` with the numbers they stand for. This test fails when `wire.py`
no longer writes exactly those bytes; `js/contract.test.ts` fails when the TypeScript side no
longer reads them. After a deliberate change to the format, rewrite the files with
`python tests/test_contract_fixtures.py` and update the other side until both pass.
"""

from __future__ import annotations

import json
import math
import pathlib
import sys

import numpy as np

from attnwidget import wire
from attnwidget.capturing import Capture, LayerRecord, Sink, StackRecord, TokenSide
from attnwidget.capturing.derived import with_derived_stacks

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "contract"
STACK, LAYER = "self", 1
TOP_KEYS_HEAD, TOP_K = 1, 3
PROMPT = 2
PROMPT_SINK = Sink("<prompt>", f"the {PROMPT} prompt positions the model puts before the text")


def fixture_capture() -> Capture:
    """Two layers of 4 query heads on 2 key/value heads (GQA) over a 5-token sentence pair, with a bias, logit
    soft-capping and sinks, so every optional part of the format is present; the model numbers its two attention
    layers 1 and 3, as a hybrid model whose other layers do not attend would. Each head's bias takes another form
    of the record: head 0 a relative position bias (one value per key - query), head 1 ALiBi on a causal mask (per
    key and per diagonal), head 2 anything with key 2 masked (whole), head 3 a per-key term with key 2 masked.
    Layer 0 has one learned sink per head (GPT-OSS); layer 1, the one written out, a sink per head and query that
    stands for 2 prompt positions before the text, the log-sum-exp of their logits (CPM-Ant)."""
    rng = np.random.default_rng(7)
    tokens = ["[CLS]", "leaves", "fall", "[SEP]", "autumn"]
    side = TokenSide("input", tokens, list(tokens), [101, 3727, 2991, 102, 7114], [True, False, False, True, False], 3)
    heads, kv_heads, n, dim = 4, 2, len(tokens), 4
    offsets = np.arange(n)[None, :] - np.arange(n)[:, None]  # key - query
    causal = np.where(offsets > 0, -np.inf, 0).astype(np.float32)
    bias = np.stack([
        rng.normal(size=2 * n - 1).astype(np.float32)[offsets + n - 1],
        causal + np.float32(0.25) * np.arange(n, dtype=np.float32),
        rng.normal(size=(n, n)).astype(np.float32),
        np.broadcast_to(rng.normal(size=n).astype(np.float32), (n, n)),
    ])  # fmt: skip
    bias[2:, :, 2] = -np.inf  # key 2 masked for every query
    layers = []
    for sinks_shape in ((heads,), (heads, n, PROMPT)):
        query = rng.normal(size=(heads, n, dim)).astype(np.float32)
        key = rng.normal(size=(kv_heads, n, dim)).astype(np.float32)
        sinks = rng.normal(size=sinks_shape)
        if sinks.ndim == 3:  # each query's logits of the prompt positions, collapsed into one
            sinks = np.log(np.exp(sinks).sum(axis=-1))
        layer = LayerRecord(query=query, key=key, scale=dim**-0.5, bias=bias, softcap=1.5, sinks=sinks.astype(np.float32))
        layers.append(layer)
    stack = StackRecord("self", "input", "input", layers, np.array([0, 0, 1, 1]), [1, 3], sink=PROMPT_SINK)
    return Capture([side], [stack])


def _finite_or_none(values: np.ndarray) -> list:
    # JSON has no infinity: a masked value (-inf) is written as null.
    return [None if math.isinf(v) else float(v) for v in np.asarray(values, dtype=np.float64).ravel()]


def build_fixtures() -> dict[str, bytes]:
    """File name -> the exact bytes this version of wire.py writes."""
    capture = fixture_capture()
    # With its derived stacks, so meta has a word side and `derived` filled in (capturing/derived.py).
    meta = wire.build_meta(with_derived_stacks(capture), chunks_complete=True, query_key_complete=True)
    heads = range(capture.num_heads(STACK))
    chunks = [wire.head_chunk(capture, STACK, LAYER, head) for head in heads]
    shape = chunks[0][1]
    split = [wire.split_head_chunk(chunk, shape, has_sinks=True) for chunk, _ in chunks]
    records = [wire.query_key_record(capture, STACK, LAYER, head) for head in heads]
    thumbnails = wire.layer_thumbnails(capture, STACK, LAYER)
    top_keys, top_shape = wire.head_top_keys(capture, STACK, LAYER, TOP_KEYS_HEAD, TOP_K)
    top_indices, _ = wire.split_top_keys(top_keys, top_shape, n_key=shape[1])
    expected = {
        "key": wire.chunk_key(STACK, LAYER),
        "head_keys": [wire.head_key(STACK, LAYER, head) for head in heads],
        "stack": STACK,
        "layer": LAYER,
        "attention": {
            "shape": shape,
            "head_bytes": len(chunks[0][0]),
            "probabilities": np.stack([a for a, _ in split]).astype(np.float64).ravel().tolist(),
            "sink_weights": np.stack([s for _, s in split]).astype(np.float64).ravel().tolist(),
        },
        "thumbnails": {"shape": list(wire.thumbnail_shape(*shape)), "bytes": list(thumbnails)},
        "top_keys": {
            "head": TOP_KEYS_HEAD,
            "k": top_shape[1],
            "keys": top_indices.ravel().tolist(),
            "weights": list(top_keys[top_indices.size * 2 :]),
        },
        "query_key": [_expected_record(capture, head, record) for head, record in zip(heads, records)],
    }
    text = lambda value: (json.dumps(value, indent=1, allow_nan=False) + "\n").encode("utf-8")  # noqa: E731
    return {
        "meta.json": text(meta),
        "attention.bin": b"".join(chunk for chunk, _ in chunks),
        "thumbnails.bin": thumbnails,
        **{f"query_key_{head}.bin": record for head, record in zip(heads, records)},
        "top_keys.bin": top_keys,
        "expected.json": text(expected),
    }


def _expected_record(capture: Capture, head: int, record: bytes) -> dict:
    """What one head's record holds, and the numbers the neuron view must show from it: Python's scores
    q·k × scale, soft-capped, + bias, and their softmax, in float64 from the capture's own arrays; and the capture's
    attention."""
    header, arrays = wire.decode_query_key_record(record)
    layer = capture.stack(STACK).layers[LAYER]
    query = layer.query[head].astype(np.float64)
    key = layer.key[capture.kv_head_of(STACK)[head]].astype(np.float64)
    scores = query @ key.T * header["scale"]
    cap = header["softcap"]
    sink = np.broadcast_to(np.reshape(layer.sinks[head], (-1, 1)), (len(scores), 1))
    logits = np.concatenate([np.tanh(scores / cap) * cap + layer.bias[head], sink], axis=1)
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    as_json = lambda array: {"shape": list(np.shape(array)), "values": _finite_or_none(array)}  # noqa: E731
    return {
        "scale": header["scale"],
        "softcap": header["softcap"],
        "kv_head": header["kv_head"],
        "arrays": {name: as_json(array) for name, array in arrays.items()},
        "scores": as_json(scores),
        "bias": as_json(layer.bias[head]),
        "python_softmax": as_json((weights / weights.sum(axis=1, keepdims=True))[:, :-1]),
        "softmax": as_json(capture.head_attention(LAYER, head, STACK)),
    }




def test_wire_writes_exactly_the_golden_fixture():
    for name, data in build_fixtures().items():
        assert (FIXTURES / name).read_bytes() == data, (
            f"wire.py no longer writes tests/fixtures/contract/{name}; if the change is deliberate, run "
            "`python tests/test_contract_fixtures.py`, bump the contract version and update js/contract"
        )


def test_the_fixture_decodes_back_in_python():
    expected = json.loads((FIXTURES / "expected.json").read_text())
    chunks = (FIXTURES / "attention.bin").read_bytes()
    size = expected["attention"]["head_bytes"]
    split = [
        wire.split_head_chunk(chunks[start : start + size], expected["attention"]["shape"], has_sinks=True)
        for start in range(0, len(chunks), size)
    ]
    probabilities, sink_weights = (np.stack(arrays).ravel() for arrays in zip(*split))
    np.testing.assert_array_equal(probabilities, np.array(expected["attention"]["probabilities"], np.float32))
    np.testing.assert_array_equal(sink_weights, np.array(expected["attention"]["sink_weights"], np.float32))
    forms = []
    for head, expected_record in enumerate(expected["query_key"]):
        header, arrays = wire.decode_query_key_record((FIXTURES / f"query_key_{head}.bin").read_bytes())
        assert header["scale"] == expected_record["scale"]
        assert header["softcap"] == expected_record["softcap"] == 1.5
        assert header["kv_head"] == [0, 0, 1, 1][head]
        assert arrays["query"].shape == (5, 4) and arrays["key"].shape == (5, 4) and arrays["sinks"].shape == (5,)
        forms.append(sorted(set(arrays) - {"query", "key", "sinks"}))
        bias = wire.record_bias(arrays, 5, 5)
        masked_as_null = np.array(expected_record["bias"]["values"], float).reshape(5, 5)
        np.testing.assert_array_equal(bias, np.nan_to_num(masked_as_null, nan=-np.inf))
        python_softmax = np.array(expected_record["python_softmax"]["values"], float).reshape(5, 5)
        np.testing.assert_allclose(python_softmax, np.array(expected_record["softmax"]["values"]).reshape(5, 5), atol=1e-6)
    assert forms == [["bias_diagonal"], ["bias_diagonal", "bias_key"], ["bias"], ["bias_key"]]


if __name__ == "__main__":
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for name, data in build_fixtures().items():
        (FIXTURES / name).write_bytes(data)
        print(f"wrote {FIXTURES / name} ({len(data)} bytes)", file=sys.stderr)
