"""The golden fixture of the data contract: bytes Python writes, which vitest decodes.

`tests/fixtures/contract/` holds a small meta, the attention chunks of one layer's heads (one after
the other), that layer's thumbnails, its query-key record and one head's top keys made by `wire.py`, and
`expected.json` with the numbers they stand for. This test fails when `wire.py`
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

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "contract"
STACK, LAYER = "self", 1
TOP_KEYS_HEAD, TOP_K = 1, 3
PROMPT = 2
PROMPT_SINK = Sink("<prompt>", f"the {PROMPT} prompt positions the model puts before the text")


def fixture_capture() -> Capture:
    """Two layers of 4 query heads on 2 key/value heads (GQA) over a 5-token sentence pair, with a
    position bias, one masked key, logit soft-capping and sinks, so every optional part of the format
    is present; the model numbers its two attention layers 1 and 3, as a hybrid model whose other layers do not
    attend would. Layer 0 has one learned sink per head (GPT-OSS); layer 1, the one written out, a sink per head
    and query that stands for 2 prompt positions before the text, the log-sum-exp of their logits (CPM-Ant)."""
    rng = np.random.default_rng(7)
    tokens = ["[CLS]", "leaves", "fall", "[SEP]", "autumn"]
    side = TokenSide("input", tokens, list(tokens), [101, 3727, 2991, 102, 7114], [True, False, False, True, False], 3)
    heads, kv_heads, n, dim = 4, 2, len(tokens), 4
    bias = rng.normal(size=(heads, n, n)).astype(np.float32)
    bias[:, :, 2] = -np.inf  # key 2 masked for every query
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
    meta = wire.build_meta(capture, chunks_complete=True, query_key_complete=True)
    heads = range(capture.num_heads(STACK))
    chunks = [wire.head_chunk(capture, STACK, LAYER, head) for head in heads]
    shape = chunks[0][1]
    split = [wire.split_head_chunk(chunk, shape, has_sinks=True) for chunk, _ in chunks]
    record = wire.query_key_record(capture, STACK, LAYER)
    header, arrays = wire.decode_query_key_record(record)
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
        "query_key": {
            "scale": header["scale"],
            "softcap": header["softcap"],
            **{name: {"shape": list(array.shape), "values": _finite_or_none(array)} for name, array in arrays.items()},
            "softmax": {"shape": [len(heads), *shape], "values": capture.layer_attention(LAYER, STACK).astype(np.float64).ravel().tolist()},
        },
    }
    text = lambda value: (json.dumps(value, indent=1, allow_nan=False) + "\n").encode("utf-8")  # noqa: E731
    return {
        "meta.json": text(meta),
        "attention.bin": b"".join(chunk for chunk, _ in chunks),
        "thumbnails.bin": thumbnails,
        "query_key.bin": record,
        "top_keys.bin": top_keys,
        "expected.json": text(expected),
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
    header, arrays = wire.decode_query_key_record((FIXTURES / "query_key.bin").read_bytes())
    assert header["scale"] == expected["query_key"]["scale"]
    assert header["softcap"] == expected["query_key"]["softcap"] == 1.5
    assert sorted(arrays) == ["bias", "key", "query", "scores", "sinks"]
    assert arrays["sinks"].shape == (4, 5)  # one per head and query


if __name__ == "__main__":
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for name, data in build_fixtures().items():
        (FIXTURES / name).write_bytes(data)
        print(f"wrote {FIXTURES / name} ({len(data)} bytes)", file=sys.stderr)
