import { describe, expect, it } from "vitest";
import { exact, shown } from "./draw/format";
import { topKeysOfChunk } from "./head/lines";
import { neuronRow } from "./neuron/row";
import { golden, goldenChunks, numbers } from "./test/golden";
import { buildFixture, offsetView } from "./test/fixtures";
import {
  asSigned,
  isSigned,
  valueStep,
  byteToProbability,
  chunkKey,
  headKey,
  headLength,
  headThumbnail,
  thumbnailShape,
  decodeAttentionChunk,
  decodeTopKeys,
  headSinkWeights,
  decodeQueryKey,
  isResponse,
  layerLabel,
  parseChunkKey,
  sinkOf,
  stackInfo,
  toUint8,
} from "./contract";

describe("uint8 decoding", () => {
  it("reads only the DataView's window of a larger buffer", () => {
    const view = offsetView(new Uint8Array([7, 8, 9]), 11);
    expect(view.byteOffset).toBe(11);
    expect(view.buffer.byteLength).toBeGreaterThan(3);
    expect([...toUint8(view)]).toEqual([7, 8, 9]);
  });

  it("accepts a bare ArrayBuffer and typed arrays with an offset", () => {
    expect([...toUint8(new Uint8Array([1, 2]).buffer)]).toEqual([1, 2]);
    const source = new Uint8Array([0, 0, 5, 6]);
    expect([...toUint8(source.subarray(2))]).toEqual([5, 6]);
  });

  it("rejects what is not binary with a clear error", () => {
    expect(() => toUint8("abc" as never)).toThrow(/binary attention data/);
  });
});

describe("meta helpers", () => {
  it("keys layers as <stack>/<layer> and heads as <stack>/<layer>/<head>", () => {
    expect(chunkKey("cross", 3)).toBe("cross/3");
    expect(headKey("cross", 3, 5)).toBe("cross/3/5");
    expect(parseChunkKey("cross/3")).toEqual(["cross", 3]);
    expect(() => parseChunkKey("cross")).toThrow(/not a chunk key of the form <stack>\/<layer>/);
  });

  it("finds a stack's token sides, and its chunk size", () => {
    const { meta } = buildFixture({ encoderDecoder: { decoderTokens: ["<s>", "a", "b"] } });
    const cross = stackInfo(meta, "cross")!;
    expect(cross.query.tokens).toEqual(["<s>", "a", "b"]);
    expect(cross.key.tokens).toHaveLength(8);
    expect(headLength(cross)).toBe(3 * 8);
    expect(stackInfo(meta, "nope")).toBeNull();
  });

  it("tells responses from other messages", () => {
    expect(isResponse({ kind: "response", id: 1, error: "x" })).toBe(true);
    expect(isResponse({ kind: "request", id: 1 })).toBe(false);
    expect(isResponse(null)).toBe(false);
  });
});

describe("the golden fixture Python wrote (tests/fixtures/contract/)", () => {
  const { meta, attention, queryKeys, expected } = golden();
  const { stack, layer } = expected;

  it("names the chunk it holds by its key", () => {
    expect(chunkKey(stack, layer)).toBe(expected.key);
    expect(parseChunkKey(expected.key)).toEqual([stack, layer]);
  });

  it("names the layer by the model's own number, the chunk by its index", () => {
    const info = stackInfo(meta, stack);
    expect(info?.stack.layer_numbers).toEqual([1, 3]);
    expect(layerLabel(info?.stack, layer)).toBe("3");
    expect(layerLabel({ ...info!.stack, layer_numbers: undefined }, layer)).toBe(String(layer)); // a version 1 meta
  });

  it("names each head's chunk by its key", () => {
    expect(expected.head_keys).toEqual(Array.from({ length: meta.stacks[0].heads }, (_, head) => headKey(stack, layer, head)));
  });

  it("decodes each head's attention chunk to the expected probabilities", () => {
    const info = stackInfo(meta, stack)!;
    const [nQuery, nKey] = expected.attention.shape;
    expect([info.query.tokens.length, info.key.tokens.length]).toEqual([nQuery, nKey]);
    const cells = headLength(info);
    const chunks = Object.values(goldenChunks(golden()));
    const probabilities = chunks.flatMap((chunk, head) => {
      const bytes = decodeAttentionChunk(meta, { stack, layer, head }, offsetView(chunk, 3));
      return [...bytes.subarray(0, cells)].map((byte) => byteToProbability(byte, meta));
    });
    expect(probabilities).toEqual(expected.attention.probabilities.map((p: number) => expect.closeTo(p, 7)));
  });

  it("reads each head's sink weights after its attention, where the layer has a sink", () => {
    const info = stackInfo(meta, stack)!;
    const chunks = Object.values(goldenChunks(golden()));
    const weights = chunks.flatMap((chunk, head) => [...headSinkWeights(info, layer, decodeAttentionChunk(meta, { stack, layer, head }, chunk))!]);
    expect(weights.map((byte) => byteToProbability(byte, meta))).toEqual(expected.attention.sink_weights.map((p: number) => expect.closeTo(p, 7)));
    expect(weights).toHaveLength(info.stack.heads * info.query.tokens.length);
    const without = { ...info, stack: { ...info.stack, has_sinks: undefined } }; // a version 2 meta
    expect(headSinkWeights(without, layer, chunks[0])).toBeNull();
  });

  it("cuts each head's thumbnail out of its layer's, as Python pooled it", () => {
    const info = stackInfo(meta, stack)!;
    expect(thumbnailShape(meta, info)).toEqual(expected.thumbnails.shape);
    const heads = Array.from({ length: info.stack.heads }, (_, head) => [...headThumbnail(meta, info, layer, offsetView(golden().thumbnails, 1), head)]);
    expect(heads.flat()).toEqual(expected.thumbnails.bytes);
    expect(() => headThumbnail(meta, info, layer, golden().thumbnails.subarray(1), 0)).toThrow(/thumbnails of self\/1 have 99 bytes, expected 100/);
  });

  it("reads a head's top keys as Python chose them, and an exported page picks the same from the head's chunk", () => {
    const { head, k, keys, weights } = expected.top_keys;
    const top = decodeTopKeys(meta, { stack, layer, head }, offsetView(golden().topKeys, 1));
    expect([top.k, [...top.keys], [...top.weights]]).toEqual([k, keys, weights]);
    const [nQuery, nKey] = expected.attention.shape;
    const chunk = goldenChunks(golden())[expected.head_keys[head]];
    const fromChunk = topKeysOfChunk(chunk, nQuery, nKey, k);
    // Rank by rank the same weights; two keys whose weights round to one byte may trade places.
    expect([...fromChunk.weights]).toEqual(weights);
    expect([...fromChunk.keys].map((key, i) => chunk[Math.floor(i / k) * nKey + key])).toEqual(weights);
    expect(() => decodeTopKeys(meta, { stack, layer, head }, golden().topKeys.subarray(1))).toThrow(/top keys self\/1\/1 have 44 bytes/);
  });

  it("names the sink as meta says, and as GPT-OSS's learned sink in a meta older than version 4", () => {
    const info = stackInfo(meta, stack)!;
    expect(sinkOf(info.stack)).toEqual({ label: "<prompt>", stands_for: "the 2 prompt positions the model puts before the text" });
    expect(sinkOf({ ...info.stack, sink: undefined }).label).toBe("<sink>");
  });

  it("rejects an attention chunk of the wrong size, saying what to do", () => {
    expect(() => decodeAttentionChunk(meta, { stack, layer, head: 2 }, attention.subarray(1, 30))).toThrow(
      /attention chunk self\/1\/2 has 29 bytes, expected 30 \(query tokens × key tokens, then query tokens sink weights\).*re-create the widget/,
    );
  });

  it("decodes each head's query-key record to the capture's float32 arrays, bit for bit", () => {
    const forms = queryKeys.map((bytes, head) => {
      const record = decodeQueryKey(meta, stack, layer, head, offsetView(bytes, 5));
      const qk = expected.query_key[head];
      expect([record.scale, record.softcap, record.kvHead]).toEqual([qk.scale, qk.softcap, qk.kv_head]);
      expect([record.nQuery, record.dim]).toEqual(qk.arrays.query.shape);
      expect([record.nKey, record.dim]).toEqual(qk.arrays.key.shape);
      expect([...record.query]).toEqual(numbers(qk.arrays.query));
      expect([...record.key]).toEqual(numbers(qk.arrays.key));
      // The fixture's layer has a sink logit per query (the log-sum-exp of its prompt positions' logits).
      expect(record.sinks!.perQuery).toBe(true);
      expect([...record.sinks!.data]).toEqual(numbers(qk.arrays.sinks));
      const { diagonal, key, whole, additive } = record.bias!;
      expect(additive).toBe(true);
      const terms = { bias_diagonal: diagonal, bias_key: key, bias: whole };
      for (const [name, values] of Object.entries(terms)) {
        if (values) expect([...values]).toEqual(numbers(qk.arrays[name]));
        else expect(qk.arrays[name]).toBeUndefined();
      }
      return Object.keys(terms).filter((name) => terms[name as keyof typeof terms]);
    });
    expect(forms).toEqual([["bias_diagonal"], ["bias_diagonal", "bias_key"], ["bias"], ["bias_key"]]);
  });

  it("computes Python's scores and bias to every digit shown and hovered, and the capture's softmax", () => {
    const [nQuery, nKey] = expected.attention.shape;
    queryKeys.forEach((bytes, head) => {
      const record = decodeQueryKey(meta, stack, layer, head, bytes);
      const qk = expected.query_key[head];
      const [scores, bias, pythonSoftmax, softmax] = [qk.scores, qk.bias, qk.python_softmax, qk.softmax].map(numbers);
      const cap = qk.softcap!;
      for (let q = 0; q < nQuery; q++) {
        const row = neuronRow(record, q);
        for (let k = 0; k < nKey; k++) {
          const at = q * nKey + k;
          expect(shown(row.scores[k])).toBe(shown(scores[at]));
          expect(exact(row.scores[k])).toBe(exact(scores[at]));
          expect(row.bias[k]).toBe(bias[at]);
          expect(shown(row.capped![k])).toBe(shown(cap * Math.tanh(scores[at] / cap)));
          expect(shown(row.softmax[k])).toBe(shown(pythonSoftmax[at]));
          expect(exact(row.softmax[k])).toBe(exact(pythonSoftmax[at]));
          expect(Math.abs(row.softmax[k] - softmax[at])).toBeLessThan(1e-6);
        }
      }
    });
  });

  it("reads one sink logit for every query where the record has one per head (GPT-OSS)", () => {
    const record = decodeQueryKey(meta, stack, layer, 2, queryKeys[2]);
    const learned = { data: Float32Array.of(2), perQuery: false };
    for (let q = 0; q < record.nQuery; q++) {
      const row = neuronRow({ ...record, sinks: learned }, q);
      const own = neuronRow(record, q);
      expect(row.sink).toMatchObject({ logit: 2, perQuery: false });
      // Only the sink's logit changed: the keys keep their ratios, and with the sink make 1.
      const ratio = row.softmax[0] / own.softmax[0];
      row.softmax.forEach((p, k) => expect(p).toBeCloseTo(own.softmax[k] * ratio, 12));
      expect(row.softmax.reduce((a, b) => a + b, row.sink!.weight)).toBeCloseTo(1, 12);
    }
  });

  it("refuses a record whose arrays are not float32, or lie outside it", () => {
    const edited = (edit: (entry: { name: string; dtype: string; offset: number }) => void) => {
      const bytes = queryKeys[0];
      const length = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true);
      const header = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + length)));
      edit(header.arrays.find((entry: { name: string }) => entry.name === "key"));
      const text = new TextEncoder().encode(JSON.stringify(header).padEnd(length));
      const copy = new Uint8Array(bytes); // a copy (a Buffer's slice would share its memory)
      copy.set(text.subarray(0, length), 4);
      return copy;
    };
    expect(() => decodeQueryKey(meta, stack, layer, 0, edited((key) => (key.dtype = "float16")))).toThrow(
      /queries and keys of self\/1\/0: array key has dtype float16, expected float32/,
    );
    const outside = edited((key) => (key.offset = 4096));
    expect(() => decodeQueryKey(meta, stack, layer, 0, outside)).toThrow(/array key lies outside the record/);
  });

  it("says which record does not fit the tokens", () => {
    const { meta: other } = buildFixture();
    expect(() => decodeQueryKey(other, "self", 1, 0, queryKeys[0])).toThrow(
      /queries and keys of self\/1\/0: the query-key record's query of shape 5×4 does not fit 8 queries × 8 keys/,
    );
  });
});

describe("a signed stack of the golden fixture (A − B of two compared runs)", () => {
  const { signed, expected } = golden();
  const { stack, values, sink_weights, thumbnails } = expected.signed;
  const info = stackInfo(signed.meta, stack)!;

  it("is marked signed, names the stacks it is the difference of, and reads its bytes as int8 / 127", () => {
    expect(isSigned(info)).toBe(true);
    expect(info.stack.difference_of).toEqual(["A:self", "B:self"]);
    expect(isSigned(stackInfo(signed.meta, "A:self"))).toBe(false);
    expect(valueStep(signed.meta, info)).toBe(1 / 127);
    const bytes = decodeAttentionChunk(signed.meta, { stack, layer: expected.layer, head: 0 }, offsetView(signed.chunk, 3));
    const decoded = [...asSigned(bytes)].map((byte) => byte * valueStep(signed.meta, info));
    const cells = headLength(info);
    expect(decoded.slice(0, cells)).toEqual(values.map((v) => expect.closeTo(v, 7)));
    expect(decoded.slice(cells)).toEqual(sink_weights.map((v) => expect.closeTo(v, 7)));
    expect(decoded.some((v) => v < 0) && decoded.some((v) => v > 0)).toBe(true);
  });

  it("reads its thumbnails as int8", () => {
    const heads = Array.from({ length: info.stack.heads }, (_, head) => [...asSigned(headThumbnail(signed.meta, info, expected.layer, signed.thumbnails, head))]);
    expect(heads.flat()).toEqual(thumbnails);
  });
});
