// Attention chunks (one layer of one stack, uint8) for the views: from the preloaded
// `_chunks` trait when Python sent them, otherwise asked for once over a custom message.
//
// anywidget hands initialize() and every render() a different proxy of the same model, so
// the cache cannot hang off the model object. It hangs off the `meta` object instead: every
// proxy returns the same one, and new data from Python arrives as a new meta, which starts
// a fresh cache by itself.

import {
  chunkKey,
  chunkLength,
  isResponse,
  stackInfo,
  toUint8,
  type Binary,
  type Meta,
  type WidgetModel,
} from "./contract";

interface Pending {
  key: string;
  resolve(bytes: Uint8Array): void;
  reject(error: Error): void;
}

interface Cache {
  /** Every chunk ever asked for, answered or not; a key in here is never asked for again. */
  promises: Map<string, Promise<Uint8Array>>;
  ready: Map<string, Uint8Array>;
  pending: Map<number, Pending>;
}

const caches = new WeakMap<Meta, Cache>();
// Request ids only need to be unique per widget; one counter for the page is simplest, and
// shared with the neuron view's requests (js/neuron/store.ts) so answers never get mixed up.
let lastRequestId = 0;
export const nextRequestId = () => ++lastRequestId;

function cacheFor(meta: Meta): Cache {
  let cache = caches.get(meta);
  if (!cache) {
    cache = { promises: new Map(), ready: new Map(), pending: new Map() };
    caches.set(meta, cache);
  }
  return cache;
}

/** Check a chunk against meta before any view indexes into it. */
function checked(meta: Meta, stack: string, layer: number, bytes: Uint8Array): Uint8Array {
  const info = stackInfo(meta, stack);
  const expected = info ? chunkLength(info) : -1;
  if (bytes.length !== expected) {
    throw new Error(
      `attention chunk ${chunkKey(stack, layer)} has ${bytes.length} bytes, expected ${expected} ` +
        `(heads × query tokens × key tokens); the widget's data is inconsistent, re-create the widget`,
    );
  }
  return bytes;
}

function parseKey(key: string): [string, number] {
  const slash = key.lastIndexOf("/");
  return [key.slice(0, slash), Number(key.slice(slash + 1))];
}

/**
 * Answers to requests, and chunks Python adds to `_chunks` later, for one model.
 * Installed once per model from initialize(); returns its cleanup.
 */
export function listenForChunks(model: WidgetModel): () => void {
  const onMessage = (content: unknown, buffers: Binary[]) => {
    if (!isResponse(content)) return;
    const meta = model.get("meta");
    const cache = meta && caches.get(meta);
    const pending = cache?.pending.get(content.id);
    if (!cache || !pending) return; // an answer for data that has since been replaced
    cache.pending.delete(content.id);
    if ("error" in content) {
      pending.reject(new Error(content.error));
      return;
    }
    try {
      if (!buffers?.[0]) throw new Error(`the answer for chunk ${pending.key} carried no data`);
      const [stack, layer] = parseKey(pending.key);
      pending.resolve(checked(meta, stack, layer, toUint8(buffers[0])));
    } catch (error) {
      pending.reject(error as Error);
    }
  };
  const onChunks = () => {
    const meta = model.get("meta");
    const cache = meta && caches.get(meta);
    const chunks = model.get("_chunks") ?? {};
    if (!cache) return;
    for (const [id, pending] of cache.pending) {
      const binary = chunks[pending.key];
      if (!binary) continue;
      cache.pending.delete(id);
      try {
        const [stack, layer] = parseKey(pending.key);
        pending.resolve(checked(meta, stack, layer, toUint8(binary)));
      } catch (error) {
        pending.reject(error as Error);
      }
    }
  };
  model.on("msg:custom", onMessage);
  model.on("change:_chunks", onChunks);
  return () => {
    model.off("msg:custom", onMessage);
    model.off("change:_chunks", onChunks);
  };
}

export class ChunkStore {
  constructor(private readonly model: WidgetModel) {}

  /** The chunk if it is already here, for drawing without waiting. */
  peek(stack: string, layer: number): Uint8Array | undefined {
    const meta = this.model.get("meta");
    if (!meta) return undefined;
    const key = chunkKey(stack, layer);
    const cache = cacheFor(meta);
    if (!cache.ready.has(key)) {
      const binary = this.model.get("_chunks")?.[key];
      if (binary) {
        try {
          cache.ready.set(key, checked(meta, stack, layer, toUint8(binary)));
        } catch {
          return undefined; // get() reports the error
        }
      }
    }
    return cache.ready.get(key);
  }

  /** The chunk, from `_chunks` or asked for once; rejects with Python's error message. */
  get(stack: string, layer: number): Promise<Uint8Array> {
    const meta = this.model.get("meta");
    if (!meta) return Promise.reject(new Error("the widget has no attention data (meta is empty)"));
    const key = chunkKey(stack, layer);
    const cache = cacheFor(meta);
    const known = cache.promises.get(key);
    if (known) return known;

    let promise: Promise<Uint8Array>;
    const binary = this.model.get("_chunks")?.[key];
    if (binary) {
      try {
        promise = Promise.resolve(checked(meta, stack, layer, toUint8(binary)));
      } catch (error) {
        // Not cached: this may be the old `_chunks` of new meta, with the new ones on their way.
        return Promise.reject(error as Error);
      }
    } else if (meta.chunks_complete) {
      // Everything was sent up front (always so in an exported page, where nobody would answer).
      promise = Promise.reject(new Error(`attention chunk ${key} is missing from the widget's data`));
    } else {
      promise = new Promise<Uint8Array>((resolve, reject) => {
        const id = nextRequestId();
        cache.pending.set(id, { key, resolve, reject });
        this.model.send({ kind: "request", id, what: "attention", stack, layer });
      });
    }
    promise.then(
      (bytes) => cache.ready.set(key, bytes),
      () => {}, // callers handle the error; this branch only keeps the rejection from going unhandled
    );
    cache.promises.set(key, promise);
    return promise;
  }
}
