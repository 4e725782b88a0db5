import { describe, expect, it } from "vitest";

import type { QueryKeyLayer } from "../contract";
import { neuronRow } from "./row";

/** One head, two queries, two keys, unit vectors: every score is 0 or 1, so each softmax is known exactly. */
function layer(sinks: number[], perQuery: boolean): QueryKeyLayer {
  return {
    scale: 1, softcap: null, sinks: { data: Float32Array.from(sinks), perQuery }, heads: 1, kvHeads: 1, nQuery: 2, nKey: 2,
    dim: 1, query: Float32Array.of(1, 1), key: Float32Array.of(1, 0), scores: Float32Array.of(1, 0, 1, 0), bias: null,
  };
}

describe("neuronRow's attention sink", () => {
  it("reads the head's one sink for every query (GPT-OSS)", () => {
    for (const query of [0, 1]) {
      const row = neuronRow(layer([0], false), 0, query, [0]);
      const total = Math.E + 1 + 1;
      expect(row.sink!.logit).toBe(0);
      expect(row.sink!.weight).toBeCloseTo(1 / total, 12);
      expect(row.softmax[0]).toBeCloseTo(Math.E / total, 12);
    }
  });

  it("reads each query's own sink where the model computes one per token (Inkling2)", () => {
    const sinks = [0, 2];
    for (const query of [0, 1]) {
      const row = neuronRow(layer(sinks, true), 0, query, [0]);
      const total = Math.E + 1 + Math.exp(sinks[query]);
      expect(row.sink!.logit).toBe(sinks[query]);
      expect(row.sink!.perQuery).toBe(true);
      expect(row.sink!.weight).toBeCloseTo(Math.exp(sinks[query]) / total, 12);
      expect(row.softmax[1]).toBeCloseTo(1 / total, 12);
    }
  });
});
