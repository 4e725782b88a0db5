import { describe, expect, it } from "vitest";
import { defaultRule, headLines, magnitudeBytes, magnitudeSource, parseRule, percentToByte, ruleValue, topKeysOfChunk, weightOf, type HeadSource } from "./lines";

/** A chunk of random bytes with a fixed seed. */
function randomChunk(nq: number, nk: number, seed = 1): Uint8Array {
  let state = seed;
  const chunk = new Uint8Array(nq * nk);
  for (let i = 0; i < chunk.length; i++) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    chunk[i] = state % 40 === 0 ? 200 + (state % 50) : state % 30;
  }
  return chunk;
}

/** Each row's keys by descending byte, ties by key: the plain sort top-k must agree with. */
function sortedRow(chunk: Uint8Array, nk: number, q: number): number[] {
  return [...Array(nk).keys()].sort((a, b) => chunk[q * nk + b] - chunk[q * nk + a] || a - b);
}

const all = () => true;
const triples = (lines: number[]) => Array.from({ length: lines.length / 3 }, (_, i) => lines.slice(3 * i, 3 * i + 3));

describe("head view lines", () => {
  it("takes each query's k strongest keys of a chunk, strongest first, as a full sort would", () => {
    const [nq, nk] = [40, 70];
    const chunk = randomChunk(nq, nk);
    const top = topKeysOfChunk(chunk, nq, nk, 5);
    expect(top.k).toBe(5);
    for (let q = 0; q < nq; q++) {
      const expected = sortedRow(chunk, nk, q).slice(0, 5);
      expect([...top.keys.subarray(q * 5, q * 5 + 5)]).toEqual(expected);
      expect([...top.weights.subarray(q * 5, q * 5 + 5)]).toEqual(expected.map((k) => chunk[q * nk + k]));
    }
  });

  it("draws k lines per query under top-k and every line at or above the threshold otherwise", () => {
    const [nq, nk] = [30, 50];
    const chunk = randomChunk(nq, nk, 7);
    const source: HeadSource = { chunk };
    const top3 = triples(headLines(source, { mode: "top", k: 3 }, nq, nk, null, all));
    expect(top3).toHaveLength(nq * 3);
    const minByte = percentToByte(10);
    const strong = triples(headLines(source, { mode: "threshold", minByte }, nq, nk, null, all));
    expect(strong.length).toBe(chunk.filter((byte) => byte >= minByte).length);
    expect(strong.every(([q, k, byte]) => chunk[q * nk + k] === byte && byte >= minByte)).toBe(true);
  });

  it("draws the same top-k lines from Python's top keys as from the whole chunk, and a threshold among them", () => {
    const [nq, nk] = [20, 64];
    const chunk = randomChunk(nq, nk, 3);
    const fromPython: HeadSource = { top: topKeysOfChunk(chunk, nq, nk, 8) };
    const rule = { mode: "top", k: 4 } as const;
    expect(headLines(fromPython, rule, nq, nk, null, all)).toEqual(headLines({ chunk }, rule, nq, nk, null, all));
    // A threshold can only keep what the top keys hold: at most 8 per query.
    const low = triples(headLines(fromPython, { mode: "threshold", minByte: 1 }, nq, nk, null, all));
    expect(low.length).toBeLessThanOrEqual(nq * 8);
    expect(low.length).toBeGreaterThan(nq * 4);
    expect(weightOf(fromPython, nk, 2, sortedRow(chunk, nk, 2)[0])).toBe(Math.max(...chunk.subarray(2 * nk, 3 * nk)));
    expect(weightOf(fromPython, nk, 2, sortedRow(chunk, nk, 2)[nk - 1])).toBe(0);
  });

  it("limits lines to a focused query, a focused key, and the pair filter", () => {
    const [nq, nk] = [12, 12];
    const chunk = randomChunk(nq, nk, 5);
    const rule = { mode: "top", k: 2 } as const;
    const ofQuery = triples(headLines({ chunk }, rule, nq, nk, { side: "query", index: 4 }, all));
    expect(ofQuery.map(([q, k]) => [q, k])).toEqual(sortedRow(chunk, nk, 4).slice(0, 2).map((k) => [4, k]));
    const intoKey = triples(headLines({ chunk }, rule, nq, nk, { side: "key", index: 3 }, all));
    const expected = [...Array(nq).keys()].filter((q) => sortedRow(chunk, nk, q).slice(0, 2).includes(3));
    expect(intoKey.map(([q]) => q)).toEqual(expected);
    const filtered = triples(headLines({ chunk }, { mode: "threshold", minByte: 0 }, nq, nk, null, (q, k) => q < 3 && k >= 6));
    expect(filtered).toHaveLength(3 * 6);
  });

  it("starts long inputs on top-k and sentences on a 1% threshold, and round-trips the control's values", () => {
    expect(defaultRule(20)).toEqual({ mode: "threshold", minByte: 3 });
    expect(defaultRule(512)).toEqual({ mode: "top", k: 4 });
    for (const value of ["top:1", "top:32", "min:1", "min:25"]) expect(ruleValue(parseRule(value))).toBe(value);
  });
});

describe("lines of a signed head (A − B)", () => {
  it("are as strong as |d|: int8 values become attention bytes of their magnitude, for chunks and top keys", () => {
    const int8 = Int8Array.from([127, -127, 0, -64]);
    const chunk = new Uint8Array(int8.buffer);
    expect([...magnitudeBytes(chunk)]).toEqual([255, 255, 0, 129]);
    const source = magnitudeSource({ chunk });
    expect("chunk" in source && [...source.chunk]).toEqual([255, 255, 0, 129]);
    const top = magnitudeSource({ top: { k: 2, keys: Uint16Array.from([1, 3]), weights: new Uint8Array(Int8Array.from([-127, 64]).buffer) } });
    expect("top" in top && [...top.top.weights]).toEqual([255, 129]);
    expect("top" in top && [...top.top.keys]).toEqual([1, 3]);
  });
});
