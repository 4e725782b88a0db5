// Small, readable captures for tests: meta plus uint8 chunks with a known pattern.

import { chunkKey, headKey, type Binary, type Meta, type StackMeta, type Traits } from "../contract";
import { FakeModel } from "./fake-model";

export interface FixtureOptions {
  tokens?: string[];
  /** Index where sentence B starts, as in a BERT pair. */
  segmentB?: number | null;
  layers?: number;
  /** The model's own numbers of those layers (a hybrid model's); absent as in a version 1 meta. */
  layerNumbers?: number[];
  heads?: number;
  /** Stacks of an encoder-decoder instead of one "self" stack. */
  encoderDecoder?: { decoderTokens: string[] };
  /** Which chunks go into `_chunks`: all (default), or none so every head is requested. Thumbnails always. */
  preload?: "all" | "none";
  /** Whether `_thumbs` holds every layer's thumbnails (default); a test of thousands of tokens may spare them. */
  thumbnails?: boolean;
  traits?: Partial<Traits>;
}

export const DEFAULT_TOKENS = ["[CLS]", "the", "cat", "sat", "[SEP]", "it", "purred", "[SEP]"];

/**
 * Attention byte of (layer, head, query, key): each query row puts most of its weight on
 * key (q + head + layer) mod n_key and spreads the rest evenly, so rows differ per head and layer.
 */
export function attentionByte(layer: number, head: number, q: number, k: number, nk: number): number {
  const peak = (q + head + layer) % nk;
  const rest = Math.floor(255 * 0.3 / nk);
  return k === peak ? 255 - rest * (nk - 1) : rest;
}

/** One head's chunk: n_query × n_key bytes. */
export function headBytes(layer: number, head: number, nq: number, nk: number): Uint8Array {
  const bytes = new Uint8Array(nq * nk);
  for (let q = 0; q < nq; q++) for (let k = 0; k < nk; k++) bytes[q * nk + k] = attentionByte(layer, head, q, k, nk);
  return bytes;
}

/** Every head's thumbnail of a layer: fixtures have fewer tokens than a thumbnail's size, so each is its head whole. */
export function layerThumbnails(layer: number, heads: number, nq: number, nk: number): Uint8Array {
  const bytes = new Uint8Array(heads * nq * nk);
  for (let h = 0; h < heads; h++) bytes.set(headBytes(layer, h, nq, nk), h * nq * nk);
  return bytes;
}

/** A DataView onto the bytes that starts mid-buffer, as widget managers often deliver them. */
export function offsetView(bytes: Uint8Array, offset = 5): DataView {
  const buffer = new ArrayBuffer(bytes.length + offset + 3);
  new Uint8Array(buffer, offset, bytes.length).set(bytes);
  return new DataView(buffer, offset, bytes.length);
}

/** One head's query-key record in the contract's layout (docs/data-contract.md): float32 query [nQuery, dim] and
 *  key [nKey, dim], scale 1, no bias; for views of more tokens than the golden fixture has. */
export function queryKeyRecord(
  query: Float32Array,
  key: Float32Array,
  nQuery: number,
  nKey: number,
  dim: number,
): Uint8Array {
  const aligned = (n: number) => Math.ceil(n / 8) * 8;
  const arrays = [
    { name: "query", dtype: "float32", shape: [nQuery, dim], offset: 0, values: query },
    { name: "key", dtype: "float32", shape: [nKey, dim], offset: aligned(query.byteLength), values: key },
  ];
  const layout = arrays.map(({ values: _, ...entry }) => entry);
  const header = new TextEncoder().encode(JSON.stringify({ scale: 1, softcap: null, kv_head: 0, arrays: layout }));
  const start = aligned(4 + header.length);
  const bytes = new Uint8Array(start + arrays[1].offset + key.byteLength);
  new DataView(bytes.buffer).setUint32(0, header.length, true);
  bytes.set(header, 4);
  for (const { offset, values } of arrays) {
    bytes.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), start + offset);
  }
  return bytes;
}

export function buildFixture(options: FixtureOptions = {}): { meta: Meta; chunks: Record<string, Binary>; traits: Traits } {
  const tokens = options.tokens ?? DEFAULT_TOKENS;
  const layers = options.layers ?? 2;
  const heads = options.heads ?? 3;
  const segmentB = options.segmentB === undefined ? (options.tokens ? null : 5) : options.segmentB;
  const side = (list: string[], b: number | null) => ({
    tokens: list,
    special: list.map((t) => /^\[.*\]$/.test(t)),
    segment_b_start: b,
  });
  const stack = (name: string, query_side: string, key_side: string): StackMeta => ({
    name,
    query_side,
    key_side,
    layers,
    heads,
    kv_head_of: [...Array(heads).keys()],
    ...(options.layerNumbers ? { layer_numbers: options.layerNumbers } : {}),
  });
  const sides: Meta["sides"] = { input: side(tokens, segmentB) };
  let stacks = [stack("self", "input", "input")];
  if (options.encoderDecoder) {
    sides.decoder = side(options.encoderDecoder.decoderTokens, null);
    stacks = [stack("encoder", "input", "input"), stack("decoder", "decoder", "decoder"), stack("cross", "decoder", "input")];
  }
  const meta: Meta = {
    version: 1,
    sides,
    stacks,
    encoding: { dtype: "uint8", scale: 255 },
    thumbnails: { size: 64, pooling: "max" },
    chunks_complete: options.preload !== "none",
  };
  const chunks: Record<string, Binary> = {};
  const thumbs: Record<string, Binary> = {};
  for (const s of stacks) {
    const nq = sides[s.query_side].tokens.length;
    const nk = sides[s.key_side].tokens.length;
    for (let l = 0; l < layers; l++) {
      if (options.thumbnails !== false) thumbs[chunkKey(s.name, l)] = offsetView(layerThumbnails(l, heads, nq, nk));
      if (options.preload === "none") continue;
      for (let h = 0; h < heads; h++) chunks[headKey(s.name, l, h)] = offsetView(headBytes(l, h, nq, nk));
    }
  }
  const traits: Traits = {
    layer: 0,
    head: 0,
    heads: [...Array(heads).keys()],
    token: null,
    stack: stacks[0].name,
    score: "",
    view: "head",
    theme: "light",
    pair_filter: "all",
    step: null,
    meta,
    _chunks: chunks,
    _thumbs: thumbs,
    _qk: {},
    ...options.traits,
  };
  return { meta, chunks, traits };
}

export function fakeModel(options: FixtureOptions = {}): FakeModel {
  return new FakeModel(buildFixture(options).traits);
}

/** The neuron view of one head of `n` tokens t0, t1, …, query 1 and key k / n in one dimension, so the scores rise
 *  with k, every record preloaded. */
export function longNeuronModel(n: number): FakeModel {
  const tokens = Array.from({ length: n }, (_, i) => `t${i}`);
  const { traits } = buildFixture({ tokens, heads: 1, layers: 1, preload: "none", thumbnails: false, traits: { view: "neuron", token: 0 } });
  const record = queryKeyRecord(Float32Array.from(tokens, () => 1), Float32Array.from(tokens, (_, k) => k / n), n, n, 1);
  const meta: Meta = { ...traits.meta, query_key: { available: true, complete: true } };
  return new FakeModel({ ...traits, meta, _qk: { [headKey("self", 0, 0)]: offsetView(record) } });
}
