// The golden contract fixture, as Python's wire.py wrote it (tests/fixtures/contract/, made by
// tests/test_contract_fixtures.py): the browser's decoders must read exactly these bytes, so a
// format change on either side fails the other side's tests.

import { readFileSync } from "node:fs";
import { decodeQueryKey, type Meta, type Traits } from "../contract";

// Relative to the repository root, where vitest runs (npm test).
const FIXTURES = "tests/fixtures/contract";
const read = (name: string) => readFileSync(`${FIXTURES}/${name}`);
const readJson = (name: string) => JSON.parse(readFileSync(`${FIXTURES}/${name}`, "utf8"));

/** An array as expected.json writes it: its shape and its values, row-major; null is -Infinity. */
export interface Expected {
  shape: number[];
  values: (number | null)[];
}

/** One head's query-key record as expected.json describes it: its header and arrays, and the numbers the neuron
 *  view must show from it, which Python computed in float64 from the capture (scores, bias) and its attention. */
export interface ExpectedRecord {
  scale: number;
  softcap: number | null;
  kv_head: number;
  arrays: Record<string, Expected>;
  scores: Expected;
  bias: Expected;
  /** Python's float64 softmax of those logits (and the sink's). */
  python_softmax: Expected;
  /** The capture's attention. */
  softmax: Expected;
}

export interface Golden {
  meta: Meta;
  /** Every head's attention chunk, one after the other, its thumbnails and each head's query-key record, all of
   *  layer `expected.layer` of `expected.stack`. */
  attention: Uint8Array;
  thumbnails: Uint8Array;
  queryKeys: Uint8Array[];
  /** One head's top keys (`expected.top_keys.head`). */
  topKeys: Uint8Array;
  /** The fixture compared with a sharper copy (`AttentionWidget.compare`): its meta, head 0 of layer
   *  `expected.layer` of the signed stack `expected.signed.stack`, and that layer's thumbnails. */
  signed: { meta: Meta; chunk: Uint8Array; thumbnails: Uint8Array };
  expected: {
    key: string;
    head_keys: string[];
    stack: string;
    layer: number;
    attention: { shape: number[]; head_bytes: number; probabilities: number[]; sink_weights: number[] };
    thumbnails: { shape: number[]; bytes: number[] };
    top_keys: { head: number; k: number; keys: number[]; weights: number[] };
    query_key: ExpectedRecord[];
    signed: { stack: string; values: number[]; sink_weights: number[]; thumbnails: number[] };
  };
}

/** A fresh copy each call, so a test may change its meta. */
export function golden(): Golden {
  const expected = readJson("expected.json") as Golden["expected"];
  return {
    meta: readJson("meta.json"),
    attention: read("attention.bin"),
    thumbnails: read("thumbnails.bin"),
    queryKeys: expected.query_key.map((_, head) => read(`query_key_${head}.bin`)),
    topKeys: read("top_keys.bin"),
    signed: { meta: readJson("signed_meta.json"), chunk: read("signed.bin"), thumbnails: read("signed_thumbnails.bin") },
    expected,
  };
}

/** The fixture's chunks by head key. */
export function goldenChunks({ attention, expected }: Golden): Record<string, Uint8Array> {
  const size = expected.attention.head_bytes;
  return Object.fromEntries(expected.head_keys.map((key, head) => [key, attention.subarray(head * size, (head + 1) * size)]));
}

/** Expected values as numbers, null read as -Infinity. */
export const numbers = (array: Expected) => array.values.map((v) => (v === null ? -Infinity : v));

/** Traits of a widget showing the fixture's stack and layer, with its chunk and record preloaded. */
export function goldenTraits(traits: Partial<Traits> = {}): Traits {
  const fixture = golden();
  const { meta, thumbnails, expected } = fixture;
  const heads = meta.stacks[0].heads;
  return {
    layer: expected.layer,
    head: 0,
    heads: [...Array(heads).keys()],
    token: null,
    score: "",
    stack: expected.stack,
    view: "head",
    theme: "light",
    pair_filter: "all",
    step: null,
    meta,
    _chunks: goldenChunks(fixture),
    _thumbs: { [expected.key]: thumbnails },
    _qk: goldenRecords(fixture),
    ...traits,
  };
}

/** The fixture's query-key records by head key. */
export function goldenRecords({ queryKeys, expected }: Golden): Record<string, Uint8Array> {
  return Object.fromEntries(expected.head_keys.map((key, head) => [key, queryKeys[head]]));
}

/** A head's record with `softcap: null` in its header, as a model that does not cap its scores sends it. */
export function uncappedRecord(head: number): Uint8Array {
  const record = golden().queryKeys[head];
  const aligned = (n: number) => Math.ceil(n / 8) * 8;
  const length = new DataView(record.buffer, record.byteOffset).getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(record.subarray(4, 4 + length)));
  const text = new TextEncoder().encode(JSON.stringify({ ...header, softcap: null }));
  const arrays = record.subarray(aligned(4 + length));
  const uncapped = new Uint8Array(aligned(4 + text.length) + arrays.length);
  new DataView(uncapped.buffer).setUint32(0, text.length, true);
  uncapped.set(text, 4);
  uncapped.set(arrays, aligned(4 + text.length));
  return uncapped;
}

/** A head's record with its bias reduced to the mask (finite terms set to 0), as a causal model sends it. */
export function maskOnlyRecord(head: number): Uint8Array {
  const { meta, queryKeys, expected } = golden();
  const { diagonal, key, whole } = decodeQueryKey(meta, expected.stack, expected.layer, head, queryKeys[head]).bias!;
  // The decoder reads float32 arrays in place from its own copy of the record: editing them edits that copy.
  const terms = [diagonal, key, whole].filter((term) => term !== null);
  terms.forEach((term) => term.forEach((value, i) => Number.isFinite(value) && (term[i] = 0)));
  return new Uint8Array(terms[0].buffer);
}
