// One query-key record (docs/data-contract.md, mirror of wire.query_key_record): the queries,
// keys, scores and bias of one layer of one stack, decoded into float32 arrays.
//
// Queries and keys arrive as float16: they are drawn, and hovering reads them to float16's
// three digits. Scores and bias arrive as float32, so the softmax the neuron view takes from
// them (js/neuron/row.ts) equals the capture's attention to every digit displayed.

import { chunkKey, toUint8 } from "./binary";
import { stackInfo, type Binary, type Meta } from "./traits";

export interface QueryKeyLayer {
  scale: number;
  /** Logit soft-capping (Gemma 2): each score s becomes softcap × tanh(s / softcap) before the bias; null without. */
  softcap: number | null;
  heads: number;
  kvHeads: number;
  nQuery: number;
  nKey: number;
  dim: number;
  /** [heads, nQuery, dim] */
  query: Float32Array;
  /** [kvHeads, nKey, dim]: query head h reads key head kv_head_of[h]. */
  key: Float32Array;
  /** q·k × scale, [heads, nQuery, nKey] */
  scores: Float32Array;
  /** The additive term before the softmax (mask, relative position bias), or null. */
  bias: Bias | null;
  /** The logit of one more key in every softmax that is no token of the text (meta's `sink` names it), or null. */
  sinks: Sinks | null;
}

/** Sink logits: [heads] where one per head serves every query (GPT-OSS), [heads, nQuery] where each query has its
 * own, the log-sum-exp of its logits of the keys that are not tokens. */
export interface Sinks {
  data: Float32Array;
  perQuery: boolean;
}

/** Broadcast like numpy: a size-1 head or query dimension serves every head or query. */
export interface Bias {
  data: Float32Array;
  heads: number;
  rows: number;
  nKey: number;
  /** Whether any finite value is non-zero: a term worth a column of its own, not just a mask. */
  additive: boolean;
}

interface ArrayEntry {
  name: string;
  dtype: "float16" | "float32";
  shape: number[];
  offset: number;
}

const ALIGN = 8;
const aligned = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

let halfTable: Float32Array | null = null;

/** All 65536 float16 bit patterns as numbers, built once: decoding is then one lookup per value. */
function float16Table(): Float32Array {
  if (halfTable) return halfTable;
  halfTable = new Float32Array(65536);
  for (let bits = 0; bits < 65536; bits++) {
    const sign = bits & 0x8000 ? -1 : 1;
    const exponent = (bits >> 10) & 0x1f;
    const fraction = bits & 0x3ff;
    halfTable[bits] =
      exponent === 0
        ? sign * fraction * 2 ** -24
        : exponent === 31
          ? fraction
            ? NaN
            : sign * Infinity
          : sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
  }
  return halfTable;
}

function readArray(buffer: ArrayBuffer, start: number, entry: ArrayEntry): Float32Array {
  const count = entry.shape.reduce((a, b) => a * b, 1);
  const begin = start + entry.offset;
  const size = entry.dtype === "float16" ? 2 : 4;
  if (begin % ALIGN !== 0 || begin + count * size > buffer.byteLength) {
    throw new Error(`array ${entry.name} lies outside the record`);
  }
  if (entry.dtype === "float32") return new Float32Array(buffer, begin, count);
  if (entry.dtype !== "float16") throw new Error(`array ${entry.name} has unknown dtype ${String(entry.dtype)}`);
  const bits = new Uint16Array(buffer, begin, count);
  const table = float16Table();
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) values[i] = table[bits[i]];
  return values;
}

function sameShape(actual: number[] | undefined, expected: number[]): boolean {
  return !!actual && actual.length === expected.length && actual.every((n, i) => n === expected[i]);
}

/**
 * Decode a record and check it against the stack's heads and token counts, so a view never
 * indexes outside it. Throws an Error naming what does not fit.
 */
function decodeRecord(bytes: Uint8Array, expected: { heads: number; nQuery: number; nKey: number }): QueryKeyLayer {
  // A copy at offset 0: the message's buffer may start anywhere, and typed arrays need alignment.
  const buffer = bytes.slice().buffer;
  if (buffer.byteLength < 4) throw new Error("the query-key record is empty");
  const headerLength = new DataView(buffer).getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, headerLength))) as {
    scale: number;
    softcap: number | null;
    arrays: ArrayEntry[];
  };
  const start = aligned(4 + headerLength);
  const entries = new Map(header.arrays.map((entry) => [entry.name, entry]));
  const array = (name: string) => {
    const entry = entries.get(name);
    return entry ? { entry, values: readArray(buffer, start, entry) } : null;
  };
  const query = array("query");
  const key = array("key");
  const scores = array("scores");
  if (!query || !key || !scores) throw new Error("the query-key record lacks its query, key or scores");
  const { heads, nQuery, nKey } = expected;
  const dim = query.entry.shape[2];
  const kvHeads = key.entry.shape[0];
  const fits =
    sameShape(query.entry.shape, [heads, nQuery, dim]) &&
    sameShape(key.entry.shape, [kvHeads, nKey, dim]) &&
    sameShape(scores.entry.shape, [heads, nQuery, nKey]);
  if (!fits) {
    throw new Error(
      `the query-key record's shapes (${[query, key, scores].map((a) => a.entry.shape.join("×")).join(", ")}) do not fit ` +
        `${heads} heads × ${nQuery} queries × ${nKey} keys; the widget's data is inconsistent, re-create the widget`,
    );
  }
  const biasArray = array("bias");
  let bias: Bias | null = null;
  if (biasArray) {
    const [bh, rows, bk] = biasArray.entry.shape;
    if (biasArray.entry.shape.length !== 3 || ![1, heads].includes(bh) || ![1, nQuery].includes(rows) || bk !== nKey) {
      throw new Error(`the query-key record's bias of shape ${biasArray.entry.shape.join("×")} does not broadcast to the scores`);
    }
    const additive = biasArray.values.some((v) => Number.isFinite(v) && v !== 0);
    bias = { data: biasArray.values, heads: bh, rows, nKey, additive };
  }
  const sinkArray = array("sinks");
  const perQuery = !!sinkArray && sameShape(sinkArray.entry.shape, [heads, nQuery]);
  if (sinkArray && !perQuery && !sameShape(sinkArray.entry.shape, [heads])) {
    throw new Error(
      `the query-key record's sinks of shape ${sinkArray.entry.shape.join("×")} are neither one per head nor one per head and query`,
    );
  }
  const sinks = sinkArray ? { data: sinkArray.values, perQuery } : null;
  return { scale: header.scale, softcap: header.softcap ?? null, sinks, heads, kvHeads, nQuery, nKey, dim, query: query.values, key: key.values, scores: scores.values, bias };
}

/** The query-key record of one layer, checked against what meta says of its stack. */
export function decodeQueryKey(meta: Meta, stack: string, layer: number, binary: Binary): QueryKeyLayer {
  const info = stackInfo(meta, stack);
  if (!info) throw new Error(`no stack ${stack} in the widget's data`);
  const expected = { heads: info.stack.heads, nQuery: info.query.tokens.length, nKey: info.key.tokens.length };
  try {
    return decodeRecord(toUint8(binary), expected);
  } catch (error) {
    throw new Error(`queries and keys of ${chunkKey(stack, layer)}: ${(error as Error).message}`);
  }
}
