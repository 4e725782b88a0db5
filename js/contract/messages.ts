// The custom messages between Python and the browser (docs/data-contract.md): requests for one
// head's attention or one head's query-key record and their responses, and Python's image requests with their answers.

/** Every message's `kind`, as both sides spell it. */
export const KIND = { request: "request", response: "response", imageRequest: "image_request", image: "image" } as const;

/** What a request asks for: one head's attention chunk, one head's query-key record (neuron view), a tile (a region of
 *  one head pooled to the matrix view's pixels), or one head's strongest keys per query (head view). */
export const WHAT = { attention: "attention", queryKey: "query_key", tile: "tile", topKeys: "top_keys" } as const;
export type DataKind = (typeof WHAT)[keyof typeof WHAT];

/** Which data: a layer of a stack, and for attention and query-key records the head. */
export interface Where {
  stack: string;
  layer: number;
  head?: number;
}

export const TILE_POOLINGS = ["max", "mean"] as const;
export type Pooling = (typeof TILE_POOLINGS)[number];

/** Query rows [q0, q1) and key columns [k0, k1) of a head, pooled to `rows` × `columns`. */
export interface PooledRegion {
  q0: number;
  q1: number;
  k0: number;
  k1: number;
  rows: number;
  columns: number;
}

/** A tile: a pooled region of one head. */
export interface TileWhere extends Where, PooledRegion {
  head: number;
  pooling: Pooling;
}

export const IMAGE_FORMATS = ["png", "svg"] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

export interface Request extends Where, Partial<Omit<TileWhere, keyof Where>> {
  kind: typeof KIND.request;
  id: number;
  what: DataKind;
  /** `head` (of `Where`) always when asking for attention, a query-key record, a tile or top keys; the region, size
   *  and pooling for a tile; `k` only and always for top keys: keys per query (Python sends at most `TOP_KEYS_MAX`). */
  k?: number;
}

export interface QueryKeyResponse {
  kind: typeof KIND.response;
  id: number;
  what: typeof WHAT.queryKey;
  stack: string;
  layer: number;
  head: number;
}

export interface AttentionResponse {
  kind: typeof KIND.response;
  id: number;
  what: typeof WHAT.attention;
  stack: string;
  layer: number;
  head: number;
  dtype: "uint8";
  shape: [number, number];
}

export interface TileResponse extends TileWhere {
  kind: typeof KIND.response;
  id: number;
  what: typeof WHAT.tile;
  dtype: "float32";
}

export interface TopKeysResponse {
  kind: typeof KIND.response;
  id: number;
  what: typeof WHAT.topKeys;
  stack: string;
  layer: number;
  head: number;
  k: number;
  index_dtype: "uint16" | "uint32";
  dtype: "uint8";
  shape: [number, number];
}

export interface ErrorResponse {
  kind: typeof KIND.response;
  id: number;
  error: string;
}

export type Response = AttentionResponse | QueryKeyResponse | TileResponse | TopKeysResponse | ErrorResponse;

/** A request for `where`'s data; `extra` holds what a kind asks with besides where (top keys: `k`). */
export function request(id: number, what: DataKind, where: Where, extra: { k?: number } = {}): Request {
  return { kind: KIND.request, id, what, ...where, ...extra };
}

export function isResponse(content: unknown): content is Response {
  const c = content as Partial<Response> | null;
  return typeof c === "object" && c !== null && c.kind === KIND.response && typeof c.id === "number";
}

/** Python asks a displayed view for a picture of itself (widget.save_image). */
export interface ImageRequest {
  kind: typeof KIND.imageRequest;
  id: number;
  format: ImageFormat;
  /** PNG pixels per CSS pixel. */
  scale?: number;
}

/** The picture, as the one buffer (PNG or UTF-8 SVG bytes), or an error. */
export type ImageAnswer = { kind: typeof KIND.image; id: number; format: ImageFormat } & (
  | { width: number; height: number; file_name: string }
  | { error: string }
);

export function isImageRequest(content: unknown): content is ImageRequest {
  const c = content as Partial<ImageRequest> | null;
  return (
    typeof c === "object" &&
    c !== null &&
    c.kind === KIND.imageRequest &&
    typeof c.id === "number" &&
    IMAGE_FORMATS.includes(c.format as ImageFormat)
  );
}
