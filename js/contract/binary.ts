// Per-layer binary data (docs/data-contract.md): how it is keyed, where it is preloaded, and the
// attention chunk's bytes. The query-key record has its own module (./query-key.ts).

import { WHAT, type LayerData } from "./messages";
import type { Binary, BinaryTrait, Meta, StackInfo } from "./traits";
import { stackInfo } from "./traits";

/** The trait Python preloads each kind of per-layer data in. */
export const PRELOADED_IN: Readonly<Record<LayerData, BinaryTrait>> = { [WHAT.attention]: "_chunks", [WHAT.queryKey]: "_qk" };

/** "<stack>/<layer>", the key of one layer's data in `_chunks` and `_qk`. */
export function chunkKey(stack: string, layer: number): string {
  return `${stack}/${layer}`;
}

/** Stack and layer of a chunk key; the stack name is everything before the last slash. */
export function parseChunkKey(key: string): [stack: string, layer: number] {
  const slash = key.lastIndexOf("/");
  const layer = Number(key.slice(slash + 1));
  if (slash < 0 || !Number.isInteger(layer)) throw new Error(`"${key}" is not a chunk key of the form <stack>/<layer>`);
  return [key.slice(0, slash), layer];
}

/** The bytes of a binary value. Honours the view's window onto a larger buffer
 *  (a DataView from a message often starts mid-buffer); uint8 needs no alignment, so no copy. */
export function toUint8(value: Binary): Uint8Array {
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  throw new TypeError(`expected binary attention data, got ${Object.prototype.toString.call(value)}`);
}

/** What a byte means when meta names no scale: the contract's uint8 encoding, p = byte / 255. */
const DEFAULT_SCALE = 255;

/** Attention probability of one stored byte. */
export function byteToProbability(byte: number, meta: Meta): number {
  return byte / (meta.encoding?.scale || DEFAULT_SCALE);
}

/** Bytes of attention in one chunk: heads × n_query × n_key. */
export function chunkLength(info: StackInfo): number {
  return info.stack.heads * info.query.tokens.length * info.key.tokens.length;
}

/** Whether a layer's chunk ends with its sink weights (GPT-OSS's attention sinks). */
export const layerHasSinks = (info: StackInfo, layer: number): boolean => !!info.stack.has_sinks?.[layer];

/** The bytes of one attention chunk, checked against meta before any view indexes into them:
 *  the attention, then, for a layer with sinks, each head's sink weight per query. */
export function decodeAttentionChunk(meta: Meta, stack: string, layer: number, binary: Binary): Uint8Array {
  const bytes = toUint8(binary);
  const info = stackInfo(meta, stack);
  const sinks = info && layerHasSinks(info, layer) ? info.stack.heads * info.query.tokens.length : 0;
  const expected = info ? chunkLength(info) + sinks : -1;
  if (bytes.length !== expected) {
    throw new Error(
      `attention chunk ${chunkKey(stack, layer)} has ${bytes.length} bytes, expected ${expected} ` +
        `(heads × query tokens × key tokens${sinks ? ", then heads × query tokens sink weights" : ""}); ` +
        `the widget's data is inconsistent, re-create the widget`,
    );
  }
  return bytes;
}

/** One head's sink weights, a byte per query token, from a decoded chunk; null when the layer has no sinks. */
export function headSinkWeights(info: StackInfo, layer: number, bytes: Uint8Array, head: number): Uint8Array | null {
  if (!layerHasSinks(info, layer)) return null;
  const nq = info.query.tokens.length;
  const start = chunkLength(info) + head * nq;
  return bytes.subarray(start, start + nq);
}
