// Query-key records for the neuron view: from the preloaded `_qk` trait when Python sent
// them, otherwise asked for once per layer over a custom message. The sibling of chunks.ts,
// and cached the same way: off the `meta` object, which every model proxy shares.

import { nextRequestId } from "../chunks";
import { chunkKey, isResponse, stackInfo, toUint8, type Binary, type Meta, type WidgetModel } from "../contract";
import { decodeQueryKey, type QueryKeyLayer } from "./record";

export const NO_QUERY_KEY =
  "This widget has no queries or keys: it was made from attention tensors alone. " +
  "Create it from the model, AttentionWidget(model, text), to see the neuron view.";

interface Pending {
  stack: string;
  layer: number;
  resolve(layer: QueryKeyLayer): void;
  reject(error: Error): void;
}

interface Cache {
  promises: Map<string, Promise<QueryKeyLayer>>;
  ready: Map<string, QueryKeyLayer>;
  pending: Map<number, Pending>;
}

const caches = new WeakMap<Meta, Cache>();

function cacheFor(meta: Meta): Cache {
  let cache = caches.get(meta);
  if (!cache) {
    cache = { promises: new Map(), ready: new Map(), pending: new Map() };
    caches.set(meta, cache);
  }
  return cache;
}

function decode(meta: Meta, stack: string, layer: number, binary: Binary): QueryKeyLayer {
  const info = stackInfo(meta, stack);
  if (!info) throw new Error(`no stack ${stack} in the widget's data`);
  const expected = { heads: info.stack.heads, nQuery: info.query.tokens.length, nKey: info.key.tokens.length };
  try {
    return decodeQueryKey(toUint8(binary), expected);
  } catch (error) {
    throw new Error(`queries and keys of ${chunkKey(stack, layer)}: ${(error as Error).message}`);
  }
}

/** Answers to the neuron view's requests, for one model; installed from initialize(), returns its cleanup. */
export function listenForQueryKeys(model: WidgetModel): () => void {
  const onMessage = (content: unknown, buffers: Binary[]) => {
    if (!isResponse(content)) return;
    const meta = model.get("meta");
    const cache = meta && caches.get(meta);
    const pending = cache?.pending.get(content.id);
    if (!cache || !pending) return; // not ours (an attention chunk), or for data since replaced
    cache.pending.delete(content.id);
    if ("error" in content) {
      pending.reject(new Error(content.error));
      return;
    }
    try {
      if (!buffers?.[0]) throw new Error(`the answer for ${chunkKey(pending.stack, pending.layer)} carried no data`);
      pending.resolve(decode(meta, pending.stack, pending.layer, buffers[0]));
    } catch (error) {
      pending.reject(error as Error);
    }
  };
  model.on("msg:custom", onMessage);
  return () => model.off("msg:custom", onMessage);
}

export class QueryKeyStore {
  constructor(private readonly model: WidgetModel) {}

  /** Whether the capture recorded queries and keys at all. */
  available(): boolean {
    return !!this.model.get("meta")?.query_key?.available;
  }

  /** The layer if it is already here, for drawing without waiting. */
  peek(stack: string, layer: number): QueryKeyLayer | undefined {
    const meta = this.model.get("meta");
    if (!meta) return undefined;
    const key = chunkKey(stack, layer);
    const cache = cacheFor(meta);
    const binary = this.model.get("_qk")?.[key];
    if (!cache.ready.has(key) && binary) {
      try {
        cache.ready.set(key, decode(meta, stack, layer, binary));
      } catch {
        return undefined; // get() reports the error
      }
    }
    return cache.ready.get(key);
  }

  /** The layer, from `_qk` or asked for once; rejects with a message for the user. */
  get(stack: string, layer: number): Promise<QueryKeyLayer> {
    const meta = this.model.get("meta");
    if (!meta) return Promise.reject(new Error("the widget has no attention data (meta is empty)"));
    if (!meta.query_key?.available) return Promise.reject(new Error(NO_QUERY_KEY));
    const key = chunkKey(stack, layer);
    const cache = cacheFor(meta);
    const known = cache.promises.get(key);
    if (known) return known;
    const binary = this.model.get("_qk")?.[key];
    let promise: Promise<QueryKeyLayer>;
    if (binary) {
      try {
        promise = Promise.resolve(decode(meta, stack, layer, binary));
      } catch (error) {
        promise = Promise.reject(error as Error);
      }
    } else if (meta.query_key.complete) {
      // Nobody would answer (an exported page): what is not in `_qk` was left out of it.
      promise = Promise.reject(new Error(`the queries and keys of layer ${layer} were not included in this page`));
    } else {
      promise = new Promise<QueryKeyLayer>((resolve, reject) => {
        const id = nextRequestId();
        cache.pending.set(id, { stack, layer, resolve, reject });
        this.model.send({ kind: "request", id, what: "query_key", stack, layer });
      });
    }
    promise.then(
      (decoded) => cache.ready.set(key, decoded),
      () => {}, // callers handle the error; this only keeps the rejection from going unhandled
    );
    cache.promises.set(key, promise);
    return promise;
  }
}
