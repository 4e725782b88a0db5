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

export interface Golden {
  meta: Meta;
  /** The one attention chunk and the one query-key record, both of layer `expected.layer` of `expected.stack`. */
  attention: Uint8Array;
  queryKey: Uint8Array;
  expected: {
    key: string;
    stack: string;
    layer: number;
    attention: { shape: number[]; probabilities: number[] };
    query_key: { scale: number; query: Expected; key: Expected; scores: Expected; bias: Expected; softmax: Expected };
  };
}

/** A fresh copy each call, so a test may change its meta. */
export function golden(): Golden {
  return { meta: readJson("meta.json"), attention: read("attention.bin"), queryKey: read("query_key.bin"), expected: readJson("expected.json") };
}

/** Expected values as numbers, null read as -Infinity. */
export const numbers = (array: Expected) => array.values.map((v) => (v === null ? -Infinity : v));

/** Traits of a widget showing the fixture's stack and layer, with its chunk and record preloaded. */
export function goldenTraits(traits: Partial<Traits> = {}): Traits {
  const { meta, attention, queryKey, expected } = golden();
  const heads = meta.stacks[0].heads;
  return {
    layer: expected.layer,
    head: 0,
    heads: [...Array(heads).keys()],
    token: null,
    stack: expected.stack,
    view: "head",
    theme: "light",
    pair_filter: "all",
    meta,
    _chunks: { [expected.key]: attention },
    _qk: { [expected.key]: queryKey },
    ...traits,
  };
}

/** The fixture's record with its bias reduced to the mask (finite terms set to 0), as a causal model sends it. */
export function maskOnlyRecord(): Uint8Array {
  const { meta, queryKey, expected } = golden();
  const bias = decodeQueryKey(meta, expected.stack, expected.layer, queryKey).bias!.data;
  // The decoder reads float32 arrays in place from its own copy of the record: editing them edits that copy.
  bias.forEach((value, i) => Number.isFinite(value) && (bias[i] = 0));
  return new Uint8Array(bias.buffer);
}
