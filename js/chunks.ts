// Per-layer binary data for the views: from a preloaded trait when Python sent it, otherwise
// asked for once over a custom message. Two kinds of it exist: attention chunks (one layer of
// one stack, uint8; below) and the neuron view's query-key records (js/neuron/store.ts).
//
// anywidget hands initialize() and every render() a different proxy of the same model, so
// the cache cannot hang off the model object. It hangs off the `meta` object instead: every
// proxy returns the same one, and new data from Python arrives as a new meta, which starts
// a fresh cache by itself.

import {
  PRELOADED_IN,
  WHAT,
  chunkKey,
  decodeAttentionChunk,
  isResponse,
  parseChunkKey,
  request,
  type Binary,
  type LayerData,
  type Meta,
  type WidgetModel,
} from "./contract";

/** One kind of per-layer data: how it is asked for (and so where it is preloaded) and checked. */
export interface LayerKind<T> {
  what: LayerData;
  /** The layer's value, checked against meta; throws an Error that names what does not fit. */
  decode(meta: Meta, stack: string, layer: number, binary: Binary): T;
  /** Why a layer missing from the trait must not be asked for, or null when Python can answer. */
  unaskable(meta: Meta, key: string): string | null;
}

interface Pending<T> {
  key: string;
  resolve(value: T): void;
  reject(error: Error): void;
}

interface Cache<T> {
  /** Every layer ever asked for, answered or not; a key in here is never asked for again. */
  promises: Map<string, Promise<T>>;
  ready: Map<string, T>;
  pending: Map<number, Pending<T>>;
}

const caches = new WeakMap<Meta, Map<string, Cache<unknown>>>();
// Request ids only need to be unique per widget; one counter for the page and every kind of
// request is simplest, and answers of one kind are never taken for another.
let lastRequestId = 0;

function cacheFor<T>(meta: Meta, kind: LayerKind<T>): Cache<T> {
  let byKind = caches.get(meta);
  if (!byKind) caches.set(meta, (byKind = new Map()));
  let cache = byKind.get(kind.what) as Cache<T> | undefined;
  if (!cache) byKind.set(kind.what, (cache = { promises: new Map(), ready: new Map(), pending: new Map() }));
  return cache;
}

/**
 * Answers to requests of one kind, and layers Python adds to its trait later, for one model.
 * Installed once per model from initialize(); returns its cleanup.
 */
export function listenForLayers<T>(model: WidgetModel, kind: LayerKind<T>): () => void {
  const known = () => {
    const meta = model.get("meta");
    return meta && caches.get(meta)?.has(kind.what) ? { meta, cache: cacheFor(meta, kind) } : null;
  };
  const settle = (meta: Meta, pending: Pending<T>, binary: Binary) => {
    try {
      pending.resolve(kind.decode(meta, ...parseChunkKey(pending.key), binary));
    } catch (error) {
      pending.reject(error as Error);
    }
  };
  const onMessage = (content: unknown, buffers: Binary[]) => {
    if (!isResponse(content)) return;
    const found = known();
    const pending = found?.cache.pending.get(content.id);
    if (!found || !pending) return; // another kind's answer, or one for data since replaced
    found.cache.pending.delete(content.id);
    if ("error" in content) pending.reject(new Error(content.error));
    else if (!buffers?.[0]) pending.reject(new Error(`the answer for ${kind.what} ${pending.key} carried no data`));
    else settle(found.meta, pending, buffers[0]);
  };
  const trait = PRELOADED_IN[kind.what];
  const onTrait = () => {
    const found = known();
    const values = model.get(trait) ?? {};
    if (!found) return;
    for (const [id, pending] of found.cache.pending) {
      if (!values[pending.key]) continue;
      found.cache.pending.delete(id);
      settle(found.meta, pending, values[pending.key]);
    }
  };
  model.on("msg:custom", onMessage);
  model.on(`change:${trait}`, onTrait);
  return () => {
    model.off("msg:custom", onMessage);
    model.off(`change:${trait}`, onTrait);
  };
}

export class LayerStore<T> {
  constructor(
    protected readonly model: WidgetModel,
    private readonly kind: LayerKind<T>,
  ) {}

  /** The layer if it is already here, for drawing without waiting. */
  peek(stack: string, layer: number): T | undefined {
    const meta = this.model.get("meta");
    if (!meta) return undefined;
    const key = chunkKey(stack, layer);
    const cache = cacheFor(meta, this.kind);
    const binary = this.preloaded(key);
    if (!cache.ready.has(key) && binary) {
      try {
        cache.ready.set(key, this.kind.decode(meta, stack, layer, binary));
      } catch {
        return undefined; // get() reports the error
      }
    }
    return cache.ready.get(key);
  }

  /** The layer, from the trait or asked for once; rejects with Python's error message. */
  get(stack: string, layer: number): Promise<T> {
    const meta = this.model.get("meta");
    if (!meta) return Promise.reject(new Error("the widget has no attention data (meta is empty)"));
    const key = chunkKey(stack, layer);
    const cache = cacheFor(meta, this.kind);
    const known = cache.promises.get(key);
    if (known) return known;

    let promise: Promise<T>;
    const binary = this.preloaded(key);
    const unaskable = binary ? null : this.kind.unaskable(meta, key);
    if (binary) {
      try {
        promise = Promise.resolve(this.kind.decode(meta, stack, layer, binary));
      } catch (error) {
        // Not cached: this may be the old trait value of new meta, with the new one on its way.
        return Promise.reject(error as Error);
      }
    } else if (unaskable) {
      promise = Promise.reject(new Error(unaskable));
    } else {
      promise = new Promise<T>((resolve, reject) => {
        const id = ++lastRequestId;
        cache.pending.set(id, { key, resolve, reject });
        this.model.send(request(id, this.kind.what, stack, layer));
      });
    }
    promise.then(
      (value) => cache.ready.set(key, value),
      () => {}, // callers handle the error; this branch only keeps the rejection from going unhandled
    );
    cache.promises.set(key, promise);
    return promise;
  }

  private preloaded(key: string): Binary | undefined {
    return this.model.get(PRELOADED_IN[this.kind.what])?.[key];
  }
}

// -- attention chunks ---------------------------------------------------------------------

const ATTENTION: LayerKind<Uint8Array> = {
  what: WHAT.attention,
  decode: decodeAttentionChunk,
  // Everything was sent up front (always so in an exported page, where nobody would answer).
  unaskable: (meta, key) => (meta.chunks_complete ? `attention chunk ${key} is missing from the widget's data` : null),
};

export const listenForChunks = (model: WidgetModel) => listenForLayers(model, ATTENTION);

export class ChunkStore extends LayerStore<Uint8Array> {
  constructor(model: WidgetModel) {
    super(model, ATTENTION);
  }
}
