// One query-key record (docs/data-contract.md, mirror of wire.query_key_record): the query and key of one head of
// one layer of one stack, its bias and its sink, decoded into float32 arrays.
//
// Queries and keys arrive as the capture's own float32 numbers: the neuron view computes q·k × scale from them in
// float64 (js/neuron/row.ts), so its scores and softmax equal Python's to every digit displayed. The bias comes in
// the smallest form that gives back the capture's exactly: one value per key − query (causal mask, sliding window,
// T5's relative positions), one per key (padding, ALiBi), both summed in float32, or whole.

import { headKey, toUint8 } from "./binary";
import { stackInfo, type Binary, type Meta } from "./traits";

export interface QueryKeyHead {
  scale: number;
  /** Logit soft-capping (Gemma 2): each score s becomes softcap × tanh(s / softcap) before the bias; null without. */
  softcap: number | null;
  /** The key/value head whose key this is (GQA). */
  kvHead: number;
  nQuery: number;
  nKey: number;
  dim: number;
  /** nQuery × dim, row-major. */
  query: Float32Array;
  /** nKey × dim, row-major. */
  key: Float32Array;
  bias: Bias | null;
  /** The logit of one more key in every softmax that is no token of the text (meta's `sink` names it), or null. */
  sinks: Sinks | null;
}

/** Sink logits: one for every query (GPT-OSS's learned sink), or one per query, the log-sum-exp of its logits of
 * the keys that are not tokens. */
export interface Sinks {
  data: Float32Array;
  perQuery: boolean;
}

/** The head's bias: the sum of whichever terms are present (-Infinity where masked). */
export interface Bias {
  /** [nQuery + nKey − 1]: query q and key k read index k − q + nQuery − 1. */
  diagonal: Float32Array | null;
  /** [nKey]: the same for every query. */
  key: Float32Array | null;
  /** [nQuery × nKey]: any other bias, whole. */
  whole: Float32Array | null;
  /** Whether any finite value is non-zero: a term worth a column of its own, not just a mask. */
  additive: boolean;
}

/** The bias of query `q` for every key, as the capture holds it: two terms are added in float32, as Python did. */
export function biasRow(bias: Bias, nQuery: number, nKey: number, q: number): Float64Array {
  const row = new Float64Array(nKey);
  const { diagonal, key, whole } = bias;
  if (whole) {
    for (let k = 0; k < nKey; k++) row[k] = whole[q * nKey + k];
  } else if (diagonal && key) {
    for (let k = 0; k < nKey; k++) row[k] = Math.fround(diagonal[k - q + nQuery - 1] + key[k]);
  } else if (diagonal) {
    for (let k = 0; k < nKey; k++) row[k] = diagonal[k - q + nQuery - 1];
  } else if (key) {
    row.set(key);
  }
  return row;
}

interface ArrayEntry {
  name: string;
  dtype: string;
  shape: number[];
  offset: number;
}

const ALIGN = 8;
const aligned = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

function readArray(buffer: ArrayBuffer, start: number, entry: ArrayEntry): Float32Array {
  const count = entry.shape.reduce((a, b) => a * b, 1);
  const begin = start + entry.offset;
  if (entry.dtype !== "float32") {
    throw new Error(`array ${entry.name} has dtype ${String(entry.dtype)}, expected float32`);
  }
  if (begin % ALIGN !== 0 || begin + count * 4 > buffer.byteLength) {
    throw new Error(`array ${entry.name} lies outside the record`);
  }
  return new Float32Array(buffer, begin, count);
}

function sameShape(actual: number[] | undefined, expected: number[]): boolean {
  return !!actual && actual.length === expected.length && actual.every((n, i) => n === expected[i]);
}

const anyAdditive = (arrays: (Float32Array | null)[]) =>
  arrays.some((array) => !!array && array.some((v) => Number.isFinite(v) && v !== 0));

/**
 * Decode one head's record and check it against the stack's token counts, so a view never indexes outside it.
 * Throws an Error naming what does not fit.
 */
function decodeRecord(bytes: Uint8Array, expected: { nQuery: number; nKey: number; kvHeads: number }): QueryKeyHead {
  // A copy at offset 0: the message's buffer may start anywhere, and typed arrays need alignment.
  const buffer = bytes.slice().buffer;
  if (buffer.byteLength < 4) throw new Error("the query-key record is empty");
  const headerLength = new DataView(buffer).getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, headerLength))) as {
    scale: number;
    softcap: number | null;
    kv_head: number;
    arrays: ArrayEntry[];
  };
  const start = aligned(4 + headerLength);
  const entries = new Map(header.arrays.map((entry) => [entry.name, entry]));
  const { nQuery, nKey } = expected;
  /** The named array, checked to have `shape` (one of `shapes`); null when the record has none. */
  const array = (name: string, ...shapes: number[][]) => {
    const entry = entries.get(name);
    if (!entry) return null;
    if (!shapes.some((shape) => sameShape(entry.shape, shape))) {
      throw new Error(
        `the query-key record's ${name} of shape ${entry.shape.join("×")} does not fit ` +
          `${nQuery} queries × ${nKey} keys; the widget's data is inconsistent, re-create the widget`,
      );
    }
    return readArray(buffer, start, entry);
  };
  const dim = entries.get("query")?.shape[1] ?? 0;
  const query = array("query", [nQuery, dim]);
  const key = array("key", [nKey, dim]);
  if (!query || !key) throw new Error("the query-key record lacks its query or key");
  if (!Number.isInteger(header.kv_head) || header.kv_head < 0 || header.kv_head >= expected.kvHeads) {
    throw new Error(`the query-key record names key/value head ${String(header.kv_head)}, which its stack does not have`);
  }
  const diagonal = array("bias_diagonal", [nQuery + nKey - 1]);
  const keyBias = array("bias_key", [nKey]);
  const whole = array("bias", [nQuery, nKey]);
  const terms = [diagonal, keyBias, whole];
  const bias = terms.some((term) => term) ? { diagonal, key: keyBias, whole, additive: anyAdditive(terms) } : null;
  const sinkData = array("sinks", [1], [nQuery]);
  // [1] serves every query; [nQuery] is each query's own (one query alone reads the same either way).
  const sinks = sinkData ? { data: sinkData, perQuery: nQuery > 1 && sinkData.length === nQuery } : null;
  const { scale, softcap, kv_head: kvHead } = header;
  return { scale, softcap: softcap ?? null, kvHead, nQuery, nKey, dim, query, key, bias, sinks };
}

/** The query-key record of one head, checked against what meta says of its stack. */
export function decodeQueryKey(meta: Meta, stack: string, layer: number, head: number, binary: Binary): QueryKeyHead {
  const info = stackInfo(meta, stack);
  if (!info) throw new Error(`no stack ${stack} in the widget's data`);
  const kvHeads = Math.max(0, ...info.stack.kv_head_of) + 1;
  const expected = { nQuery: info.query.tokens.length, nKey: info.key.tokens.length, kvHeads };
  try {
    return decodeRecord(toUint8(binary), expected);
  } catch (error) {
    throw new Error(`queries and keys of ${headKey(stack, layer, head)}: ${(error as Error).message}`);
  }
}
