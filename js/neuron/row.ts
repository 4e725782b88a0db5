// The neuron view's numbers for one query token of one head, from its decoded query-key record: its query, the
// keys it reads, the scores q·k × scale computed here in float64 from the float32 q and k (soft-capped where the
// model caps them) plus bias, and the softmax over them.

import { biasRow, type QueryKeyHead } from "../contract";

/** Everything the neuron view shows for one query token of one head. */
export interface NeuronRow {
  query: Float32Array;
  /** The key vector of key token k. */
  key(k: number): Float32Array;
  /** q·k × scale of key k, in float64. */
  scores: Float64Array;
  /** softcap × tanh(score / softcap) of key k, or null where the model does not cap its scores. */
  capped: Float64Array | null;
  /** The bias of key k (0 without one; -Infinity where masked). */
  bias: Float64Array;
  /** softmax(score + bias), in float64; 0 where masked. With a sink, the keys' weights sum to less than 1. */
  softmax: Float64Array;
  /** The sink, one more key that is no token of the text: its logit (the head's, or this query's where each has
   * its own), and the weight it takes; or null. */
  sink: { logit: number; weight: number; perQuery: boolean } | null;
  masked: boolean[];
}

/** q·k × scale of query `q` against every key, summed in float64 over the float32 values. */
export function scoreRow(record: QueryKeyHead, q: number): Float64Array {
  const { nKey, dim, scale } = record;
  const query = record.query.subarray(q * dim, (q + 1) * dim);
  const scores = new Float64Array(nKey);
  for (let k = 0; k < nKey; k++) {
    let sum = 0;
    const base = k * dim;
    for (let d = 0; d < dim; d++) sum += query[d] * record.key[base + d];
    scores[k] = sum * scale;
  }
  return scores;
}

export function neuronRow(record: QueryKeyHead, queryIndex: number): NeuronRow {
  const { nQuery, nKey, dim } = record;
  const query = record.query.subarray(queryIndex * dim, (queryIndex + 1) * dim);
  const scores = scoreRow(record, queryIndex);
  const bias = record.bias ? biasRow(record.bias, nQuery, nKey, queryIndex) : new Float64Array(nKey);
  const masked = Array.from(bias, (v) => v === -Infinity);
  const { softcap } = record;
  const capped = softcap === null ? null : scores.map((s) => softcap * Math.tanh(s / softcap));
  const logits = (capped ?? scores).map((s, k) => s + bias[k]);
  const sinks = record.sinks;
  const sinkLogit = sinks ? sinks.data[sinks.perQuery ? queryIndex : 0] : null;
  let top = sinkLogit ?? -Infinity;
  logits.forEach((logit, k) => !masked[k] && logit > top && (top = logit));
  const weights = logits.map((logit, k) => (masked[k] ? 0 : Math.exp(logit - top)));
  const sinkWeight = sinkLogit === null ? 0 : Math.exp(sinkLogit - top);
  const total = weights.reduce((a, w) => a + w, sinkWeight);
  const softmax = total > 0 ? weights.map((w) => w / total) : weights;
  // A sink the row cannot see (-Infinity) in a row that sees nothing else either: nothing goes to it.
  const weight = total > 0 ? sinkWeight / total : 0;
  const sink = sinkLogit === null ? null : { logit: sinkLogit, weight, perQuery: !!sinks?.perQuery };
  const key = (k: number) => record.key.subarray(k * dim, (k + 1) * dim);
  return { query, key, scores, capped, bias, softmax, sink, masked };
}
