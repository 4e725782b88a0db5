// Pooling in the browser: a region of a head's byte chunk, or its thumbnail, as the same Grid a tile from Python is
// (js/contract/tile.ts), with the same bins: query q of the region falls in row floor((q - q0) × rows / span).
// Max pooling keeps a one-cell diagonal or a lone column visible at any size; mean pooling shows how much weight
// a block holds. A signed head (A − B of two compared runs) is int8: max pooling keeps the value of largest
// magnitude with its sign (the positive one on a tie), and its peaks are magnitudes, as Python pools its tiles.

import { asSigned, type Grid, type PooledRegion, type Pooling } from "../contract";

/** Where each of `count` items lands among `bins` bins: item i in bin floor(i × bins / count). */
export function binOf(count: number, bins: number): Int32Array {
  const which = new Int32Array(count);
  for (let i = 0; i < count; i++) which[i] = Math.floor((i * bins) / count);
  return which;
}

/** A head's bytes: n_query rows of n_key, and the sink weight of each row where the layer has sinks. */
export interface HeadBytes {
  bytes: Uint8Array;
  nq: number;
  nk: number;
  sinks: Uint8Array | null;
  /** What one byte stands for: 1/255, or 1/127 for a signed head. */
  step: number;
  /** Whether the bytes are int8 signed values (and `sinks` too). */
  signed?: boolean;
}

/** The value of larger magnitude of two, the positive one on a tie: max pooling of signed values. */
export const stronger = (a: number, b: number) => (Math.abs(b) > Math.abs(a) || (Math.abs(b) === Math.abs(a) && b > a) ? b : a);

/** The head's values as numbers: its bytes, or their int8 reading. */
const valuesOf = (bytes: Uint8Array, signed: boolean | undefined): Uint8Array | Int8Array => (signed ? asSigned(bytes) : bytes);

/** Query rows [q0, q1) and key columns [k0, k1). */
export type Region = Omit<PooledRegion, "rows" | "columns">;

/** Each row's largest byte (a signed head's: largest magnitude) over all its keys and its sink weight, once per
 *  head's bytes. */
const rowMaxima = new WeakMap<Uint8Array, Uint8Array>();
function rowMaximaOf({ bytes, nq, nk, sinks, signed }: HeadBytes): Uint8Array {
  let maxima = rowMaxima.get(bytes);
  if (maxima) return maxima;
  maxima = new Uint8Array(nq);
  const values = valuesOf(bytes, signed);
  const sinkValues = sinks && valuesOf(sinks, signed);
  for (let q = 0; q < nq; q++) {
    let top = sinkValues ? Math.abs(sinkValues[q]) : 0;
    for (let i = q * nk, end = i + nk; i < end; i++) top = Math.max(top, Math.abs(values[i]));
    maxima[q] = top;
  }
  rowMaxima.set(bytes, maxima);
  return maxima;
}

/** One value per row bin of `rows`, pooled from one value per query row of the region. */
function poolColumn(perRow: ArrayLike<number>, region: Region, rowBin: Int32Array, rows: number, pooling: Pooling, step: number): Float32Array {
  const out = new Float32Array(rows);
  const counts = new Int32Array(rows);
  for (let q = region.q0; q < region.q1; q++) {
    const r = rowBin[q - region.q0];
    const v = perRow[q] * step;
    if (pooling === "max") out[r] = stronger(out[r], v);
    else out[r] += v;
    counts[r]++;
  }
  if (pooling === "mean") for (let r = 0; r < rows; r++) out[r] /= counts[r];
  return out;
}

/** `region` of the head pooled to `rows` × `columns` (each at most the region's span). */
export function poolHead(head: HeadBytes, region: Region, rows: number, columns: number, pooling: Pooling): Grid {
  const { q0, q1 } = region;
  const rowBin = binOf(q1 - q0, rows);
  const { values, peak, peakPastFirst } = pooledBytes(head, region, rowBin, rows, columns, pooling === "max");
  const { step } = head;
  let sinkPeak = 0;
  const sinkValues = head.sinks && valuesOf(head.sinks, head.signed);
  if (sinkValues) for (let q = q0; q < q1; q++) sinkPeak = Math.max(sinkPeak, Math.abs(sinkValues[q]));
  const sinks = sinkValues && poolColumn(sinkValues, region, rowBin, rows, pooling, step);
  const rowPeaks = poolColumn(rowMaximaOf(head), region, rowBin, rows, pooling, step);
  return { ...region, rows, columns, values, rowPeaks, sinks, peak: Math.max(peak, sinkPeak) * step, peakPastFirst: peakPastFirst * step, step };
}

/** The region's bytes pooled (by maximum, or else by sum then mean), and its largest byte, and largest past key 0.
 *  Nothing but typed arrays in the loops: 512 × 512 bytes pool in a few milliseconds. */
function pooledBytes(
  { bytes, nk, step, signed }: HeadBytes,
  { q0, q1, k0, k1 }: Region,
  rowBin: Int32Array,
  rows: number,
  columns: number,
  max: boolean,
): { values: Float32Array; peak: number; peakPastFirst: number } {
  const columnBin = binOf(k1 - k0, columns);
  let peak = 0;
  let peakPastFirst = 0;
  // A signed head's values are int8: sums and the stronger of two by magnitude (with its sign); peaks of magnitudes.
  const data = valuesOf(bytes, signed);
  const acc = signed ? new Int32Array(rows * columns) : new Uint32Array(rows * columns);
  for (let q = q0; q < q1; q++) {
    const base = rowBin[q - q0] * columns;
    const row = q * nk;
    for (let k = k0; k < k1; k++) {
      const value = data[row + k];
      const at = base + columnBin[k - k0];
      if (!max) acc[at] += value;
      else if (signed ? stronger(acc[at], value) !== acc[at] : value > acc[at]) acc[at] = value;
      const size = value < 0 ? -value : value;
      if (size > peak) peak = size;
      // Key 0 is left out of one peak: past it, each row's largest.
      if (k > 0 && size > peakPastFirst) peakPastFirst = size;
    }
  }
  const values = new Float32Array(rows * columns);
  const rowCounts = counts(rowBin, rows);
  const columnCounts = counts(columnBin, columns);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < columns; c++) values[r * columns + c] = (acc[r * columns + c] * step) / (max ? 1 : rowCounts[r] * columnCounts[c]);
  return { values, peak, peakPastFirst };
}

function counts(bins: Int32Array, count: number): Int32Array {
  const out = new Int32Array(count);
  for (const bin of bins) out[bin]++;
  return out;
}

/**
 * A head's thumbnail (rows × columns bytes, each the max of its block of the n_query × n_key head) as a Grid of the
 * whole head: what an exported page without the head's data can still show. Its peaks are the thumbnail's own, so
 * "past key 0" leaves out the first column's block of keys.
 */
export function thumbnailGrid(thumbnail: Uint8Array, rows: number, columns: number, nq: number, nk: number, step: number, signed = false): Grid {
  const values = Float32Array.from(valuesOf(thumbnail, signed), (byte) => byte * step);
  const rowPeaks = new Float32Array(rows);
  let peak = 0;
  let peakPastFirst = 0;
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < columns; c++) {
      const v = Math.abs(values[r * columns + c]);
      rowPeaks[r] = Math.max(rowPeaks[r], v);
      peak = Math.max(peak, v);
      if (c > 0) peakPastFirst = Math.max(peakPastFirst, v);
    }
  return { q0: 0, q1: nq, k0: 0, k1: nk, rows, columns, values, rowPeaks, sinks: null, peak, peakPastFirst, step };
}
