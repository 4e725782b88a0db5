import { describe, expect, it } from "vitest";
import { binOf, poolHead, thumbnailGrid, type HeadBytes } from "./pool";

const STEP = 1 / 255;

function head(nq: number, nk: number, byte: (q: number, k: number) => number, sinks: number[] | null = null): HeadBytes {
  const bytes = Uint8Array.from({ length: nq * nk }, (_, i) => byte(Math.floor(i / nk), i % nk));
  return { bytes, nq, nk, sinks: sinks && Uint8Array.from(sinks), step: STEP };
}

/** A grid's values as rows of numbers, for reading in a failure. */
const rowsOf = (values: Float32Array, columns: number) =>
  Array.from({ length: values.length / columns }, (_, r) => [...values.subarray(r * columns, (r + 1) * columns)]);

describe("pooling a head in the browser", () => {
  it("max pooling keeps a one-cell diagonal visible at an eighth of the size; mean pooling dims it to its share", () => {
    const diagonal = head(64, 64, (q, k) => (q === k ? 255 : 0));
    const whole = { q0: 0, q1: 64, k0: 0, k1: 64 };
    const max = poolHead(diagonal, whole, 8, 8, "max");
    const mean = poolHead(diagonal, whole, 8, 8, "mean");
    for (let r = 0; r < 8; r++)
      for (let c = 0; c < 8; c++) {
        expect(max.values[r * 8 + c]).toBe(r === c ? 1 : 0);
        expect(mean.values[r * 8 + c]).toBeCloseTo(r === c ? 8 / 64 : 0, 6);
      }
  });

  it("mean pooling of a region equals the hand mean of each block, with the bins Python uses", () => {
    const bytes = head(10, 9, (q, k) => (q * 37 + k * 11) % 256, [9, 8, 7, 6, 5, 4, 3, 2, 1, 0].map((x) => x * 20));
    const region = { q0: 2, q1: 9, k0: 1, k1: 8 };
    const grid = poolHead(bytes, region, 3, 2, "mean");
    // Rows 2..8 into 3 bins: floor((q - 2) × 3 / 7) -> rows 2 3 4 | 5 6 | 7 8; keys 1..7 into 2: 1 2 3 4 | 5 6 7.
    expect([...binOf(7, 3)]).toEqual([0, 0, 0, 1, 1, 2, 2]);
    const blocks = [[2, 3, 4], [5, 6], [7, 8]];
    const keys = [[1, 2, 3, 4], [5, 6, 7]];
    const hand = blocks.map((rows) =>
      keys.map((ks) => rows.flatMap((q) => ks.map((k) => bytes.bytes[q * 9 + k] * STEP)).reduce((a, b) => a + b) / (rows.length * ks.length)),
    );
    rowsOf(grid.values, 2).forEach((row, r) => row.forEach((v, c) => expect(v).toBeCloseTo(hand[r][c], 6)));
    const handMax = blocks.map((rows) => keys.map((ks) => Math.max(...rows.flatMap((q) => ks.map((k) => bytes.bytes[q * 9 + k] * STEP)))));
    expect(rowsOf(poolHead(bytes, region, 3, 2, "max").values, 2)).toEqual(handMax.map((row) => row.map(Math.fround)));
    // The sink weights pool the same way down the rows.
    const sinkHand = blocks.map((rows) => rows.reduce((sum, q) => sum + bytes.sinks![q] * STEP, 0) / rows.length);
    [...grid.sinks!].forEach((v, r) => expect(v).toBeCloseTo(sinkHand[r], 6));
  });

  it("gives each row's peak over all its keys and its sink, not only the region's, and the peak past key 0", () => {
    const bytes = head(4, 6, (q, k) => (k === 0 ? 250 : k === 5 ? 100 + q : 10 * q + k), [0, 0, 0, 200]);
    const grid = poolHead(bytes, { q0: 0, q1: 4, k0: 0, k1: 3 }, 4, 3, "max");
    expect([...grid.rowPeaks].map((v) => Math.round(v * 255))).toEqual([250, 250, 250, 250]);
    expect(grid.peak * 255).toBeCloseTo(250, 4);
    // Past key 0, within the region (keys 1 and 2): row 3's key 2.
    expect(grid.peakPastFirst * 255).toBeCloseTo(32, 4);
  });

  it("reads a thumbnail as a grid of the whole head, its pixels each a block", () => {
    const grid = thumbnailGrid(Uint8Array.from([0, 255, 51, 102]), 2, 2, 128, 100, STEP);
    expect([grid.q1, grid.k1, grid.rows, grid.columns]).toEqual([128, 100, 2, 2]);
    expect([grid.peak, grid.peakPastFirst]).toEqual([1, 1]);
    expect([...grid.rowPeaks]).toEqual([1, 102 / 255].map(Math.fround));
  });
});

describe("pooling a signed head (A − B, int8)", () => {
  const SIGNED_STEP = 1 / 127;
  /** A signed head from values in [−1, 1], as the int8 bytes Python sends. */
  function signedHead(values: number[][], sinks: number[] | null = null): HeadBytes {
    const nq = values.length;
    const nk = values[0].length;
    const int8 = Int8Array.from(values.flat(), (d) => Math.round(d * 127));
    const sinkBytes = sinks && new Uint8Array(Int8Array.from(sinks, (d) => Math.round(d * 127)).buffer);
    return { bytes: new Uint8Array(int8.buffer), nq, nk, sinks: sinkBytes, step: SIGNED_STEP, signed: true };
  }

  it("max pooling keeps each block's value of largest magnitude with its sign; peaks are magnitudes", () => {
    const head = signedHead(
      [
        [0.2, 0, 0, 0],
        [0, -0.6, 0, 0.1],
        [0, 0, 0, 0],
        [0, 0, 0.3, -0.3],
      ],
      [0.1, -0.7, 0, 0],
    );
    const grid = poolHead(head, { q0: 0, q1: 4, k0: 0, k1: 4 }, 2, 2, "max");
    expect([...grid.values].map((v) => Math.round(v * 127))).toEqual([-76, 13, 0, 38]); // −0.6, 0.1, 0, +0.3 (tie: +)
    expect(grid.peak).toBeCloseTo(89 / 127, 6); // the sink's −0.7
    expect(grid.peakPastFirst).toBeCloseTo(76 / 127, 6);
    expect([...grid.rowPeaks].map((v) => Math.round(v * 127))).toEqual([89, 38]);
    expect([...grid.sinks!].map((v) => Math.round(v * 127))).toEqual([-89, 0]);
    const mean = poolHead(head, { q0: 0, q1: 4, k0: 0, k1: 4 }, 2, 2, "mean");
    expect(mean.values[0]).toBeCloseTo((25 - 76) / 127 / 4, 6);
  });

  it("reads a signed thumbnail as int8, its peaks as magnitudes", () => {
    const thumbnail = new Uint8Array(Int8Array.from([-100, 20, 0, 50]).buffer);
    const grid = thumbnailGrid(thumbnail, 2, 2, 8, 8, SIGNED_STEP, true);
    expect([...grid.values].map((v) => Math.round(v * 127))).toEqual([-100, 20, 0, 50]);
    expect(grid.peak).toBeCloseTo(100 / 127, 6);
    expect([...grid.rowPeaks].map((v) => Math.round(v * 127))).toEqual([100, 50]);
  });
});
