// Data for the views that Python sends up front or on request: from a preloaded trait when Python sent it,
// otherwise asked for over a custom message. Three kinds of it exist: attention chunks (one head of one layer of
// one stack, uint8; below), the neuron view's query-key records (one layer; js/neuron/store.ts) and the matrix
// view's tiles (a region of one head, never preloaded; js/tiles.ts).
//
// What was asked for is kept in a bounded cache: a byte budget, least recently used first out. An evicted value
// is asked for again when a view next needs it.
//
// anywidget hands initialize() and every render() a different proxy of the same model, so
// the cache cannot hang off the model object. It hangs off the `meta` object instead: every
// proxy returns the same one, and new data from Python arrives as a new meta, which starts
// a fresh cache by itself.

import {
  PRELOADED_IN,
  WHAT,
  decodeAttentionChunk,
  isResponse,
  keyOf,
  request,
  type Binary,
  type DataKind,
  type Meta,
  type WidgetModel,
  type Where,
} from "./contract";

/** Bytes of answered data a page keeps per kind before evicting the least recently used. */
export const CACHE_BYTES = 256 * 2 ** 20;

/** One kind of data: how it is asked for (and so where it is preloaded), keyed, checked and weighed. */
export interface DataKindSpec<T, W extends Where = Where> {
  what: DataKind;
  /** The value's key in the cache, and in its preloaded trait if any; `keyOf` (a head's or a layer's) if not given. */
  key?(where: W): string;
  /** The value, checked against meta; throws an Error that names what does not fit. */
  decode(meta: Meta, where: W, binary: Binary): T;
  /** Why a value missing from the trait must not be asked for, or null when Python can answer. */
  unaskable(meta: Meta, key: string): string | null;
  /** Bytes the value holds, counted against the cache's budget. */
  size(value: T): number;
  /** Values never evicted however full the cache: what one view shows at once (every head of a layer). */
  kept(meta: Meta): number;
  /** Bytes of answered values kept before evicting the least recently used; `CACHE_BYTES` if not given. */
  budget?: number;
  /** What a request asks with besides where (top keys: how many keys per query). */
  askedWith?: { k?: number };
}

const keyIn = <W extends Where>(kind: DataKindSpec<unknown, W>, where: W) => kind.key?.(where) ?? keyOf(where);

interface Pending<T, W extends Where = Where> {
  where: W;
  resolve(value: T): void;
  reject(error: Error): void;
}

/** Values in use order, least recently used first, within a byte budget. */
export class LruCache<T> {
  private readonly values = new Map<string, { value: T; size: number }>();
  private total = 0;

  constructor(
    private readonly budget: number,
    private readonly kept: number,
    private readonly onEvict: (key: string) => void,
  ) {}

  get(key: string): T | undefined {
    const entry = this.values.get(key);
    if (!entry) return undefined;
    this.values.delete(key); // to the recent end
    this.values.set(key, entry);
    return entry.value;
  }

  set(key: string, value: T, size: number): void {
    this.delete(key);
    this.values.set(key, { value, size });
    this.total += size;
    // The newest `kept` stay whatever they weigh: a view drawing them all must not evict one to fetch the next.
    for (const old of this.values.keys()) {
      if (this.total <= this.budget || this.values.size <= this.kept) break;
      this.delete(old);
      this.onEvict(old);
    }
  }

  get bytes(): number {
    return this.total;
  }

  private delete(key: string): void {
    const entry = this.values.get(key);
    if (!entry) return;
    this.total -= entry.size;
    this.values.delete(key);
  }
}

interface Cache<T, W extends Where> {
  /** Values asked for and not evicted, answered or not; a key in here is not asked for again. */
  promises: Map<string, Promise<T>>;
  ready: LruCache<T>;
  pending: Map<number, Pending<T, W>>;
}

const caches = new WeakMap<Meta, Map<string, Cache<unknown, never>>>();
// Request ids only need to be unique per widget; one counter for the page and every kind of
// request is simplest, and answers of one kind are never taken for another.
let lastRequestId = 0;

function cacheFor<T, W extends Where>(meta: Meta, kind: DataKindSpec<T, W>): Cache<T, W> {
  let byKind = caches.get(meta);
  if (!byKind) caches.set(meta, (byKind = new Map()));
  let cache = byKind.get(kind.what) as Cache<T, W> | undefined;
  if (!cache) {
    const promises = new Map<string, Promise<T>>();
    const ready = new LruCache<T>(kind.budget ?? CACHE_BYTES, kind.kept(meta), (key) => promises.delete(key));
    byKind.set(kind.what, (cache = { promises, ready, pending: new Map() }) as unknown as Cache<unknown, never>);
  }
  return cache;
}

/**
 * Answers to requests of one kind, and values Python adds to its trait later, for one model.
 * Installed once per model from initialize(); returns its cleanup.
 */
export function listenForData<T, W extends Where>(model: WidgetModel, kind: DataKindSpec<T, W>): () => void {
  const known = () => {
    const meta = model.get("meta");
    return meta && caches.get(meta)?.has(kind.what) ? { meta, cache: cacheFor(meta, kind) } : null;
  };
  const settle = (meta: Meta, pending: Pending<T, W>, binary: Binary) => {
    try {
      pending.resolve(kind.decode(meta, pending.where, binary));
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
    else if (!buffers?.[0]) pending.reject(new Error(`the answer for ${kind.what} ${keyIn(kind, pending.where)} carried no data`));
    else settle(found.meta, pending, buffers[0]);
  };
  const trait = PRELOADED_IN[kind.what];
  const onTrait = () => {
    const found = known();
    const values = (trait && model.get(trait)) ?? {};
    if (!found) return;
    for (const [id, pending] of found.cache.pending) {
      const binary = values[keyIn(kind, pending.where)];
      if (!binary) continue;
      found.cache.pending.delete(id);
      settle(found.meta, pending, binary);
    }
  };
  model.on("msg:custom", onMessage);
  if (trait) model.on(`change:${trait}`, onTrait);
  return () => {
    model.off("msg:custom", onMessage);
    if (trait) model.off(`change:${trait}`, onTrait);
  };
}

export class DataStore<T, W extends Where = Where> {
  constructor(
    protected readonly model: WidgetModel,
    private readonly kind: DataKindSpec<T, W>,
  ) {}

  /** The value if it is already here, for drawing without waiting. */
  peek(where: W): T | undefined {
    const meta = this.model.get("meta");
    if (!meta) return undefined;
    const key = keyIn(this.kind, where);
    const cache = cacheFor(meta, this.kind);
    const ready = cache.ready.get(key);
    if (ready !== undefined) return ready;
    const binary = this.preloaded(key);
    if (!binary) return undefined;
    try {
      const value = this.kind.decode(meta, where, binary);
      cache.ready.set(key, value, this.kind.size(value));
      return value;
    } catch {
      return undefined; // get() reports the error
    }
  }

  /** The value, from the trait or asked for (once while it stays cached); rejects with Python's error message. */
  get(where: W): Promise<T> {
    const meta = this.model.get("meta");
    if (!meta) return Promise.reject(new Error("the widget has no attention data (meta is empty)"));
    const key = keyIn(this.kind, where);
    const cache = cacheFor(meta, this.kind);
    const known = cache.promises.get(key);
    if (known) return known;

    let promise: Promise<T>;
    const binary = this.preloaded(key);
    const unaskable = binary ? null : this.kind.unaskable(meta, key);
    if (binary) {
      try {
        promise = Promise.resolve(this.kind.decode(meta, where, binary));
      } catch (error) {
        // Not cached: this may be the old trait value of new meta, with the new one on its way.
        return Promise.reject(error as Error);
      }
    } else if (unaskable) {
      promise = Promise.reject(new Error(unaskable));
    } else {
      promise = new Promise<T>((resolve, reject) => {
        const id = ++lastRequestId;
        cache.pending.set(id, { where, resolve, reject });
        this.model.send(request(id, this.kind.what, where, this.kind.askedWith));
      });
    }
    promise.then(
      (value) => cache.promises.get(key) === promise && cache.ready.set(key, value, this.kind.size(value)),
      () => {}, // callers handle the error; this branch only keeps the rejection from going unhandled
    );
    cache.promises.set(key, promise);
    return promise;
  }

  private preloaded(key: string): Binary | undefined {
    const trait = PRELOADED_IN[this.kind.what];
    return trait && this.model.get(trait)?.[key];
  }
}

// -- attention chunks ---------------------------------------------------------------------

const ATTENTION: DataKindSpec<Uint8Array> = {
  what: WHAT.attention,
  decode: decodeAttentionChunk,
  // Everything was sent up front (always so in an exported page, where nobody would answer).
  unaskable: (meta, key) => (meta.chunks_complete ? `attention chunk ${key} is missing from the widget's data` : null),
  size: (bytes) => bytes.byteLength,
  kept: (meta) => Math.max(1, ...meta.stacks.map((stack) => stack.heads)),
};

export const listenForChunks = (model: WidgetModel) => listenForData(model, ATTENTION);

/** One head's attention at a time: what the views draw. */
export class ChunkStore extends DataStore<Uint8Array> {
  constructor(model: WidgetModel) {
    super(model, ATTENTION);
  }
}
