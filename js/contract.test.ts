import { describe, expect, it } from "vitest";
import { topKeysOfChunk } from "./head/lines";
import { neuronRow } from "./neuron/row";
import { golden, goldenChunks, numbers } from "./test/golden";
import { buildFixture, offsetView } from "./test/fixtures";
import {
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
  const { meta, attention, queryKey, expected } = golden();
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

  it("decodes the query-key record to the expected arrays", () => {
    const record = decodeQueryKey(meta, stack, layer, offsetView(queryKey, 5));
    const qk = expected.query_key;
    expect(record.scale).toBe(qk.scale);
    expect(record.softcap).toBe(qk.softcap);
    // The fixture's layer has a sink logit per head and query (the log-sum-exp of its prompt positions' logits).
    expect(qk.sinks.shape).toEqual([record.heads, record.nQuery]);
    expect(record.sinks!.perQuery).toBe(true);
    expect(Array.from(record.sinks!.data)).toEqual(numbers(qk.sinks));
    expect([record.heads, record.nQuery, record.dim]).toEqual(qk.query.shape);
    expect([record.kvHeads, record.nKey, record.dim]).toEqual(qk.key.shape);
    expect([record.heads, record.nQuery, record.nKey]).toEqual(qk.scores.shape);
    expect([...record.query]).toEqual(numbers(qk.query));
    expect([...record.key]).toEqual(numbers(qk.key));
    expect([...record.scores]).toEqual(numbers(qk.scores));
    const bias = record.bias!;
    expect([bias.heads, bias.rows, bias.nKey]).toEqual(qk.bias.shape);
    expect([...bias.data]).toEqual(numbers(qk.bias));
    expect(bias.additive).toBe(true);
  });

  it("gives the neuron view the capture's softmax for every head and query", () => {
    const record = decodeQueryKey(meta, stack, layer, queryKey);
    const softmax = numbers(expected.query_key.softmax);
    const [heads, nQuery, nKey] = expected.query_key.softmax.shape;
    const kvHeadOf = stackInfo(meta, stack)!.stack.kv_head_of;
    for (let h = 0; h < heads; h++) {
      for (let q = 0; q < nQuery; q++) {
        const row = neuronRow(record, h, q, kvHeadOf);
        row.softmax.forEach((p, k) => expect(Math.abs(p - softmax[(h * nQuery + q) * nKey + k])).toBeLessThan(1e-6));
      }
    }
  });

  it("reads one sink logit per head for every query where the record has one per head (GPT-OSS)", () => {
    const record = decodeQueryKey(meta, stack, layer, queryKey);
    const learned = { data: Float32Array.from([0.5, -1, 2, 0]), perQuery: false };
    const kvHeadOf = stackInfo(meta, stack)!.stack.kv_head_of;
    for (let q = 0; q < record.nQuery; q++) {
      const row = neuronRow({ ...record, sinks: learned }, 2, q, kvHeadOf);
      const own = neuronRow(record, 2, q, kvHeadOf);
      expect(row.sink).toMatchObject({ logit: 2, perQuery: false });
      // Only the sink's logit changed: the keys keep their ratios, and with the sink make 1.
      const ratio = row.softmax[0] / own.softmax[0];
      row.softmax.forEach((p, k) => expect(p).toBeCloseTo(own.softmax[k] * ratio, 12));
      expect(row.softmax.reduce((a, b) => a + b, row.sink!.weight)).toBeCloseTo(1, 12);
    }
  });

  it("says which record does not fit the tokens", () => {
    const { meta: other } = buildFixture();
    expect(() => decodeQueryKey(other, "self", 1, queryKey)).toThrow(
      /queries and keys of self\/1: .*do not fit 3 heads × 8 queries × 8 keys/,
    );
  });
});
