// The neuron view's numbers for one query token of one head, from a decoded query-key record:
// its query, the keys it reads, scores (soft-capped where the model caps them) plus bias, and the
// softmax over them.

import type { QueryKeyLayer } from "../contract";

/** Everything the neuron view shows for one query token of one head. */
export interface NeuronRow {
  kvHead: number;
  query: Float32Array;
  /** The key vector of key token k. */
  key(k: number): Float32Array;
  /** q·k × scale of key k. */
  scores: Float32Array;
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

export function neuronRow(layer: QueryKeyLayer, head: number, queryIndex: number, kvHeadOf: number[]): NeuronRow {
  const { nQuery, nKey, dim } = layer;
  const kvHead = kvHeadOf[head] ?? head;
  const query = layer.query.subarray((head * nQuery + queryIndex) * dim, (head * nQuery + queryIndex + 1) * dim);
  const scores = layer.scores.subarray((head * nQuery + queryIndex) * nKey, (head * nQuery + queryIndex + 1) * nKey);
  const bias = new Float64Array(nKey);
  const b = layer.bias;
  if (b) {
    const start = ((b.heads === 1 ? 0 : head) * b.rows + (b.rows === 1 ? 0 : queryIndex)) * nKey;
    for (let k = 0; k < nKey; k++) bias[k] = b.data[start + k];
  }
  const masked = Array.from(bias, (v) => v === -Infinity);
  const { softcap } = layer;
  const capped = softcap === null ? null : Float64Array.from(scores, (s) => softcap * Math.tanh(s / softcap));
  const logits = Array.from(capped ?? scores, (s, k) => s + bias[k]);
  const sinks = layer.sinks;
  const sinkLogit = sinks ? sinks.data[sinks.perQuery ? head * nQuery + queryIndex : head] : null;
  const top = Math.max(...logits.filter((_, k) => !masked[k]), sinkLogit ?? -Infinity);
  const weights = Float64Array.from(logits, (logit, k) => (masked[k] ? 0 : Math.exp(logit - top)));
  const sinkWeight = sinkLogit === null ? 0 : Math.exp(sinkLogit - top);
  const total = weights.reduce((a, w) => a + w, sinkWeight);
  const softmax = total > 0 ? weights.map((w) => w / total) : weights;
  // A sink the row cannot see (-Infinity) in a row that sees nothing else either: nothing goes to it.
  const weight = total > 0 ? sinkWeight / total : 0;
  const sink = sinkLogit === null ? null : { logit: sinkLogit, weight, perQuery: !!sinks?.perQuery };
  const key = (k: number) => layer.key.subarray((kvHead * nKey + k) * dim, (kvHead * nKey + k + 1) * dim);
  return { kvHead, query, key, scores, capped, bias, softmax, sink, masked };
}
