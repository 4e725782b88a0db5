// Binary data (docs/data-contract.md): how it is keyed, where it is preloaded, the attention chunk's bytes (one
// head of one layer) and the thumbnails' (every head of one layer). The query-key record has its own module
// (./query-key.ts).

import { WHAT, type DataKind, type Where } from "./messages";
import type { Binary, BinaryTrait, Meta, StackInfo } from "./traits";
import { stackInfo } from "./traits";

/** The trait Python preloads each kind of requested data in; tiles and top keys are only ever asked for. */
export const PRELOADED_IN: Readonly<Partial<Record<DataKind, BinaryTrait>>> = { [WHAT.attention]: "_chunks", [WHAT.queryKey]: "_qk" };

/** "<stack>/<layer>", the key of one layer's thumbnails in `_thumbs`. */
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

/** "<stack>/<layer>/<head>", the key of one head's attention in `_chunks` and its query-key record in `_qk`. */
export function headKey(stack: string, layer: number, head: number): string {
  return `${chunkKey(stack, layer)}/${head}`;
}

/** The key of `where` in its trait: a head's when it names one, else a layer's. */
export function keyOf(where: Where): string {
  return where.head === undefined ? chunkKey(where.stack, where.layer) : headKey(where.stack, where.layer, where.head);
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

/** What a signed byte means when meta names no scale: d = byte / 127. */
const DEFAULT_SIGNED_SCALE = 127;

/** Whether a stack holds signed values (A − B of two compared runs), read as int8, rather than attention. */
export const isSigned = (info: StackInfo | null | undefined): boolean => !!info?.stack.signed;

/** What one stored byte of the stack stands for: 1/255 of attention, or 1/127 of a signed difference. */
export function valueStep(meta: Meta | null | undefined, info: StackInfo | null | undefined): number {
  return isSigned(info) ? 1 / (meta?.encoding?.signed?.scale || DEFAULT_SIGNED_SCALE) : 1 / (meta?.encoding?.scale || DEFAULT_SCALE);
}

/** A signed stack's bytes as the int8 values they are (the same memory, no copy). */
export const asSigned = (bytes: Uint8Array): Int8Array => new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** Bytes of attention in one head's chunk: n_query × n_key. */
export function headLength(info: StackInfo): number {
  return info.query.tokens.length * info.key.tokens.length;
}

/** Whether a layer's chunks end with their sink weights (GPT-OSS's attention sinks). */
export const layerHasSinks = (info: StackInfo, layer: number): boolean => !!info.stack.has_sinks?.[layer];

/** The bytes of one head's attention chunk, checked against meta before any view indexes into them:
 *  the attention, then, for a layer with sinks, the head's sink weight per query. */
export function decodeAttentionChunk(meta: Meta, where: Where, binary: Binary): Uint8Array {
  const bytes = toUint8(binary);
  const info = stackInfo(meta, where.stack);
  const sinks = info && layerHasSinks(info, where.layer) ? info.query.tokens.length : 0;
  const expected = info ? headLength(info) + sinks : -1;
  if (bytes.length !== expected) {
    throw new Error(
      `attention chunk ${keyOf(where)} has ${bytes.length} bytes, expected ${expected} ` +
        `(query tokens × key tokens${sinks ? ", then query tokens sink weights" : ""}); ` +
        `the widget's data is inconsistent, re-create the widget`,
    );
  }
  return bytes;
}

/** The head's sink weights, a byte per query token, from its decoded chunk; null when the layer has no sinks. */
export function headSinkWeights(info: StackInfo, layer: number, bytes: Uint8Array): Uint8Array | null {
  return layerHasSinks(info, layer) ? bytes.subarray(headLength(info)) : null;
}

/** Rows and columns of a head's thumbnail: each side's token count, at most `meta.thumbnails.size`. */
export function thumbnailShape(meta: Meta, info: StackInfo): [rows: number, columns: number] {
  const size = meta.thumbnails.size;
  return [Math.min(info.query.tokens.length, size), Math.min(info.key.tokens.length, size)];
}

/** One head's thumbnail (rows × columns bytes) out of its layer's `_thumbs` value, checked against meta. */
export function headThumbnail(meta: Meta, info: StackInfo, layer: number, binary: Binary, head: number): Uint8Array {
  const bytes = toUint8(binary);
  const [rows, columns] = thumbnailShape(meta, info);
  const expected = info.stack.heads * rows * columns;
  if (bytes.length !== expected) {
    throw new Error(
      `thumbnails of ${chunkKey(info.stack.name, layer)} have ${bytes.length} bytes, expected ${expected} ` +
        "(heads × rows × columns); the widget's data is inconsistent, re-create the widget",
    );
  }
  return bytes.subarray(head * rows * columns, (head + 1) * rows * columns);
}

// -- top keys (head view) -----------------------------------------------------------------

/** The most keys per query Python sends in one top-keys answer (wire.TOP_KEYS_MAX). */
export const TOP_KEYS_MAX = 64;

/** Per query, a head's strongest keys, strongest first: query q's are `keys[q * k + r]`, their bytes `weights[...]`. */
export interface TopKeys {
  k: number;
  keys: Uint16Array | Uint32Array;
  weights: Uint8Array;
}

/** A top-keys answer (docs/data-contract.md, "Top keys"): n_query × k key indices, then as many weight bytes; k comes
 *  from the length, the index width from n_key. */
export function decodeTopKeys(meta: Meta, where: Where, binary: Binary): TopKeys {
  const bytes = toUint8(binary);
  const info = stackInfo(meta, where.stack);
  const nq = info?.query.tokens.length ?? 0;
  const nk = info?.key.tokens.length ?? 0;
  const width = nk <= 2 ** 16 ? 2 : 4;
  const k = nq > 0 ? bytes.length / (nq * (width + 1)) : 0;
  if (!Number.isInteger(k) || k < 1 || k > Math.min(nk, TOP_KEYS_MAX)) {
    throw new Error(
      `top keys ${keyOf(where)} have ${bytes.length} bytes, not query tokens × k × ${width + 1} for a k in 1..${Math.min(nk, TOP_KEYS_MAX)}; ` +
        `the widget's data is inconsistent, re-create the widget`,
    );
  }
  const count = nq * k;
  // Typed arrays need aligned starts; a message's buffer may begin anywhere, so copy the indices when it does not.
  const start = bytes.byteOffset % width === 0 ? bytes : bytes.slice();
  const keys = width === 2 ? new Uint16Array(start.buffer, start.byteOffset, count) : new Uint32Array(start.buffer, start.byteOffset, count);
  return { k, keys, weights: bytes.subarray(count * width) };
}
