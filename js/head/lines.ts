// Which lines the head view draws for one head: the top-k keys of each query, or every key above a threshold, from
// the head's whole chunk when the browser has it, else from its strongest keys as Python sent them (./store.ts).

import { asSigned, type TopKeys } from "../contract";

/** Lines to the k strongest keys of each query, or to every key with at least `minByte` of attention. */
export type LineRule = { mode: "top"; k: number } | { mode: "threshold"; minByte: number };

/** What the line control offers: top-k choices, and thresholds in percent. */
export const TOP_K_CHOICES = [1, 2, 4, 8, 16, 32] as const;
export const THRESHOLD_PERCENTS = [1, 5, 10, 25] as const;

/** Above this many key tokens, a head view starts with top-k lines (see `defaultRule`). */
export const LONG_INPUT_KEYS = 128;

/** What the view starts with. A sentence: every line of at least 1% (BertViz's picture, a few hundred lines per
 *  head). A long input: each query's 4 strongest keys, enough for the usual first-token sink, previous token and a
 *  match or two, while 12 heads × 512 queries stay at about 25,000 lines instead of hundreds of thousands. */
export function defaultRule(nKey: number): LineRule {
  return nKey > LONG_INPUT_KEYS ? { mode: "top", k: 4 } : { mode: "threshold", minByte: percentToByte(1) };
}

/** The smallest byte of at least `percent` of attention (bytes are p × 255). */
export const percentToByte = (percent: number) => Math.ceil((percent * 255) / 100);

/** The control's value for a rule, and back: "top:4", "min:1" (percent). */
export function ruleValue(rule: LineRule): string {
  return rule.mode === "top" ? `top:${rule.k}` : `min:${THRESHOLD_PERCENTS.find((p) => percentToByte(p) === rule.minByte) ?? 1}`;
}

export function parseRule(value: string): LineRule {
  const [mode, number] = value.split(":");
  return mode === "top" ? { mode: "top", k: Number(number) } : { mode: "threshold", minByte: percentToByte(Number(number)) };
}

/** What the browser has of one head: its whole chunk (n_query × n_key bytes, maybe sink weights after), or its
 *  strongest keys per query. */
export type HeadSource = { chunk: Uint8Array } | { top: TopKeys };

/** A token the lines are limited to: a query's lines, or the lines into a key. */
export interface Focus {
  side: "query" | "key";
  index: number;
}

const chunkTops = new WeakMap<Uint8Array, Map<number, TopKeys>>();

/** Each query's `k` strongest keys of a whole chunk, strongest first (ties: the lower key first), as Python's top keys;
 *  remembered per chunk, since drawing asks again on every change of the rule. */
export function topKeysOfChunk(chunk: Uint8Array, nq: number, nk: number, k: number): TopKeys {
  let byK = chunkTops.get(chunk);
  if (!byK) chunkTops.set(chunk, (byK = new Map()));
  const known = byK.get(k);
  if (known) return known;
  const width = Math.min(k, nk);
  const keys = nk <= 2 ** 16 ? new Uint16Array(nq * width) : new Uint32Array(nq * width);
  const weights = new Uint8Array(nq * width);
  for (let q = 0; q < nq; q++) {
    const base = q * width;
    let filled = 0;
    for (let key = 0, at = q * nk; key < nk; key++, at++) {
      const byte = chunk[at];
      if (filled === width && byte <= weights[base + width - 1]) continue;
      // Insert into the row's sorted list, dropping its weakest when full.
      let slot = filled < width ? filled++ : width - 1;
      while (slot > 0 && weights[base + slot - 1] < byte) {
        weights[base + slot] = weights[base + slot - 1];
        keys[base + slot] = keys[base + slot - 1];
        slot--;
      }
      weights[base + slot] = byte;
      keys[base + slot] = key;
    }
  }
  const top = { k: width, keys, weights };
  byK.set(k, top);
  return top;
}

/** The lines `rule` keeps of one head, limited to `focus` when given, as flat (query, key, byte) triples. A top-keys
 *  source holds each query's strongest keys only: a threshold is applied among those. */
export function headLines(
  source: HeadSource,
  rule: LineRule,
  nq: number,
  nk: number,
  focus: Focus | null,
  allowed: (q: number, k: number) => boolean,
): number[] {
  const lines: number[] = [];
  const keep = (q: number, k: number, byte: number) => {
    if (focus?.side === "key" && k !== focus.index) return;
    if (allowed(q, k)) lines.push(q, k, byte);
  };
  const [first, last] = focus?.side === "query" ? [focus.index, focus.index + 1] : [0, nq];
  if (rule.mode === "threshold" && "chunk" in source) {
    const [k0, k1] = focus?.side === "key" ? [focus.index, focus.index + 1] : [0, nk];
    for (let q = first; q < last; q++) {
      for (let k = k0; k < k1; k++) {
        const byte = source.chunk[q * nk + k];
        if (byte >= rule.minByte) keep(q, k, byte);
      }
    }
    return lines;
  }
  const top = "top" in source ? source.top : topKeysOfChunk(source.chunk, nq, nk, rule.mode === "top" ? rule.k : nk);
  const count = rule.mode === "top" ? Math.min(rule.k, top.k) : top.k;
  const minByte = rule.mode === "top" ? 1 : rule.minByte;
  for (let q = first; q < last; q++) {
    for (let r = 0; r < count; r++) {
      const byte = top.weights[q * top.k + r];
      if (byte < minByte) break; // strongest first: the rest are weaker
      keep(q, top.keys[q * top.k + r], byte);
    }
  }
  return lines;
}

/** The head's byte of attention from query `q` to key `k`; 0 for a key not among a top-keys source's. */
export function weightOf(source: HeadSource, nk: number, q: number, k: number): number {
  if ("chunk" in source) return source.chunk[q * nk + k];
  const { top } = source;
  for (let r = 0; r < top.k; r++) if (top.keys[q * top.k + r] === k) return top.weights[q * top.k + r];
  return 0;
}

// -- signed heads (A − B of two compared runs) --------------------------------------------------
const magnitudes = new WeakMap<Uint8Array, Uint8Array>();

/** A signed head's int8 values (d = byte / 127) as the bytes of |d| in the attention encoding (|d| × 255), so the
 *  head view draws lines as strong as the difference; the sign shows in the matrix and model views. */
export function magnitudeBytes(signed: Uint8Array): Uint8Array {
  let bytes = magnitudes.get(signed);
  if (!bytes) {
    bytes = Uint8Array.from(asSigned(signed), (value) => Math.min(255, Math.round((Math.abs(value) * 255) / 127)));
    magnitudes.set(signed, bytes);
  }
  return bytes;
}

/** A signed head's source as lines of |d|: its chunk, or its top keys (keys of largest |d|, strongest first). */
export function magnitudeSource(source: HeadSource): HeadSource {
  return "chunk" in source ? { chunk: magnitudeBytes(source.chunk) } : { top: { ...source.top, weights: magnitudeBytes(source.top.weights) } };
}
