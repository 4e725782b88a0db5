import { describe, expect, it } from "vitest";

import type { QueryKeyHead } from "../contract";
import { neuronRow } from "./row";

/** One head, two queries, two keys, unit vectors: every score is 0 or 1, so each softmax is known exactly. */
function head(sinks: number[], perQuery: boolean): QueryKeyHead {
  return {
    scale: 1, softcap: null, kvHead: 0, sinks: { data: Float32Array.from(sinks), perQuery }, nQuery: 2, nKey: 2,
    dim: 1, query: Float32Array.of(1, 1), key: Float32Array.of(1, 0), bias: null,
  };
}

describe("neuronRow's attention sink", () => {
  it("reads the head's one sink for every query (GPT-OSS)", () => {
    for (const query of [0, 1]) {
      const row = neuronRow(head([0], false), query);
      const total = Math.E + 1 + 1;
      expect(row.sink!.logit).toBe(0);
      expect(row.sink!.weight).toBeCloseTo(1 / total, 12);
      expect(row.softmax[0]).toBeCloseTo(Math.E / total, 12);
    }
  });

  it("reads each query's own sink where the model computes one per token (Inkling2)", () => {
    const sinks = [0, 2];
    for (const query of [0, 1]) {
      const row = neuronRow(head(sinks, true), query);
      const total = Math.E + 1 + Math.exp(sinks[query]);
      expect(row.sink!.logit).toBe(sinks[query]);
      expect(row.sink!.perQuery).toBe(true);
      expect(row.sink!.weight).toBeCloseTo(Math.exp(sinks[query]) / total, 12);
      expect(row.softmax[1]).toBeCloseTo(1 / total, 12);
    }
  });
});

describe("neuronRow's scores", () => {
  it("sums the float32 products in float64, where float32 would round", () => {
    // 2^24 + 1 is not a float32: a float32 sum of these products would lose the 1.
    const record: QueryKeyHead = {
      scale: 0.5, softcap: null, kvHead: 0, sinks: null, nQuery: 1, nKey: 1, dim: 2,
      query: Float32Array.of(2 ** 12, 1), key: Float32Array.of(2 ** 12, 1), bias: null,
    };
    expect(neuronRow(record, 0).scores[0]).toBe((2 ** 24 + 1) * 0.5);
  });

  it("adds a diagonal and a key term in float32, as Python built the bias", () => {
    const diagonal = Float32Array.of(0.1, 0, -Infinity);
    const key = Float32Array.of(1e8, 0.3);
    const record: QueryKeyHead = {
      scale: 1, softcap: null, kvHead: 0, sinks: null, nQuery: 2, nKey: 2, dim: 1,
      query: Float32Array.of(0, 0), key: Float32Array.of(0, 0), bias: { diagonal, key, whole: null, additive: true },
    };
    const row = neuronRow(record, 1); // query 1 reads diagonal[k - 1 + 1]
    expect([...row.bias]).toEqual([Math.fround(0.1 + 1e8), Math.fround(0 + key[1])]);
    expect(row.bias[0]).toBe(1e8); // float32 has no room for the 0.1
    expect(neuronRow(record, 0).masked).toEqual([false, true]);
  });
});
