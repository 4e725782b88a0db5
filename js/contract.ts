// The browser half of docs/data-contract.md: trait names and types, the `meta` JSON,
// chunk keys and bytes, and the custom messages. Mirror of src/attnwidget/wire.py.
// Renaming a trait here (or in Python) must turn every reader into a type error.

export type ViewName = "head" | "model" | "neuron" | "matrix";
export type Theme = "auto" | "light" | "dark";
export type PairFilter = "all" | "AA" | "AB" | "BA" | "BB";

export const VIEW_NAMES: readonly ViewName[] = ["head", "model", "neuron", "matrix"];
export const THEMES: readonly Theme[] = ["auto", "light", "dark"];
export const PAIR_FILTERS: readonly PairFilter[] = ["all", "AA", "AB", "BA", "BB"];

export interface TokenSide {
  tokens: string[];
  special: boolean[];
  segment_b_start: number | null;
}

export interface StackMeta {
  name: string;
  query_side: string;
  key_side: string;
  layers: number;
  heads: number;
  kv_head_of: number[];
}

export interface Meta {
  version: number;
  sides: Record<string, TokenSide>;
  stacks: StackMeta[];
  encoding: { dtype: "uint8"; scale: number };
  chunks_complete: boolean;
  /** Queries and keys for the neuron view: whether the capture has them, and whether `_qk` holds every layer. */
  query_key?: { available: boolean; complete: boolean };
}

/** A binary value as the widget manager hands it over: a DataView, sometimes a bare buffer. */
export type Binary = DataView | ArrayBuffer | ArrayBufferView;

/** The synced traits, exactly as named in widget.py. */
export interface Traits {
  layer: number;
  head: number;
  heads: number[];
  token: number | null;
  stack: string;
  view: ViewName;
  theme: Theme;
  pair_filter: PairFilter;
  meta: Meta;
  _chunks: Record<string, Binary>;
  /** Preloaded query-key records (neuron view), keyed like `_chunks`. */
  _qk: Record<string, Binary>;
}

/** A trait whose change the views react to: any but `_chunks` is data Python alone writes. */
export type WatchedTrait = WritableTrait | "meta" | "_chunks";

/** The traits the browser may write; `meta` and `_chunks` belong to Python. */
export type WritableTrait = "layer" | "head" | "heads" | "token" | "stack" | "view" | "theme" | "pair_filter";
export const WRITABLE_TRAITS: readonly WritableTrait[] = [
  "layer",
  "head",
  "heads",
  "token",
  "stack",
  "view",
  "theme",
  "pair_filter",
];

export type CustomMessageHandler = (content: unknown, buffers: Binary[]) => void;

/** The part of the anywidget model we use, typed by our traits. */
export interface WidgetModel {
  get<K extends keyof Traits>(key: K): Traits[K];
  set<K extends WritableTrait>(key: K, value: Traits[K]): void;
  save_changes(): void;
  on(event: `change:${keyof Traits}`, callback: () => void): void;
  on(event: "msg:custom", callback: CustomMessageHandler): void;
  off(event: `change:${keyof Traits}`, callback: () => void): void;
  off(event: "msg:custom", callback: CustomMessageHandler): void;
  send(content: Request | ImageAnswer, callbacks?: unknown, buffers?: ArrayBuffer[]): void;
}

export function chunkKey(stack: string, layer: number): string {
  return `${stack}/${layer}`;
}

/** The bytes of a binary value. Honours the view's window onto a larger buffer
 *  (a DataView from a message often starts mid-buffer); uint8 needs no alignment, so no copy. */
export function toUint8(value: Binary): Uint8Array {
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  throw new TypeError(`expected binary attention data, got ${Object.prototype.toString.call(value)}`);
}

/** Attention probability of one stored byte. */
export function byteToProbability(byte: number, meta: Meta): number {
  return byte / (meta.encoding?.scale || 255);
}

export interface AttentionRequest {
  kind: "request";
  id: number;
  what: "attention";
  stack: string;
  layer: number;
}

/** One layer of one stack for the neuron view; answered with one query-key record (see js/neuron/record.ts). */
export interface QueryKeyRequest {
  kind: "request";
  id: number;
  what: "query_key";
  stack: string;
  layer: number;
}

export type Request = AttentionRequest | QueryKeyRequest;

export interface QueryKeyResponse {
  kind: "response";
  id: number;
  what: "query_key";
  stack: string;
  layer: number;
}

export interface AttentionResponse {
  kind: "response";
  id: number;
  what: "attention";
  stack: string;
  layer: number;
  dtype: "uint8";
  shape: [number, number, number];
}

export interface ErrorResponse {
  kind: "response";
  id: number;
  error: string;
}

export type Response = AttentionResponse | QueryKeyResponse | ErrorResponse;

export function isResponse(content: unknown): content is Response {
  const c = content as Partial<Response> | null;
  return typeof c === "object" && c !== null && c.kind === "response" && typeof c.id === "number";
}

/** Python asks a displayed view for a picture of itself (widget.save_image). */
export interface ImageRequest {
  kind: "image_request";
  id: number;
  format: "png" | "svg";
  /** PNG pixels per CSS pixel. */
  scale?: number;
}

/** The picture, as the one buffer (PNG or UTF-8 SVG bytes), or an error. */
export type ImageAnswer = { kind: "image"; id: number; format: "png" | "svg" } & (
  | { width: number; height: number; file_name: string }
  | { error: string }
);

export function isImageRequest(content: unknown): content is ImageRequest {
  const c = content as Partial<ImageRequest> | null;
  return (
    typeof c === "object" && c !== null && c.kind === "image_request" && typeof c.id === "number" && (c.format === "png" || c.format === "svg")
  );
}

/** The stack's description plus its two token sides, or null if meta does not name it. */
export interface StackInfo {
  stack: StackMeta;
  query: TokenSide;
  key: TokenSide;
}

export function stackInfo(meta: Meta | null | undefined, name: string): StackInfo | null {
  const stack = meta?.stacks?.find((s) => s.name === name);
  if (!meta || !stack) return null;
  const query = meta.sides[stack.query_side];
  const key = meta.sides[stack.key_side];
  return query && key ? { stack, query, key } : null;
}

/** Bytes in one chunk: heads × n_query × n_key. */
export function chunkLength(info: StackInfo): number {
  return info.stack.heads * info.query.tokens.length * info.key.tokens.length;
}
