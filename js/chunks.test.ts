import { describe, expect, it } from "vitest";
import { ChunkStore, LruCache, listenForChunks } from "./chunks";
import { buildFixture, headBytes, fakeModel, offsetView } from "./test/fixtures";
import { initialize, settle } from "./test/mount";

describe("chunk store", () => {
  it("serves preloaded _chunks without asking Python", async () => {
    const model = fakeModel();
    initialize(model);
    const bytes = await new ChunkStore(model).get({ stack: "self", layer: 1, head: 2 });
    expect([...bytes]).toEqual([...headBytes(1, 2, 8, 8)]);
    expect(model.sent()).toEqual([]);
  });

  it("asks once over a custom message when a chunk is not preloaded, and caches the answer", async () => {
    const model = fakeModel({ preload: "none" });
    initialize(model);
    const store = new ChunkStore(model);
    const first = store.get({ stack: "self", layer: 1, head: 2 });
    const again = store.get({ stack: "self", layer: 1, head: 2 });
    expect(model.sent()).toEqual([{ kind: "request", id: expect.any(Number), what: "attention", stack: "self", layer: 1, head: 2 }]);
    const { id } = model.sent()[0];
    const expected = headBytes(1, 2, 8, 8);
    model.reply({ kind: "response", id, what: "attention", stack: "self", layer: 1, head: 2, dtype: "uint8", shape: [8, 8] }, [offsetView(expected, 9)]);
    expect([...(await first)]).toEqual([...expected]);
    expect(await again).toBe(await first);
    // A second store of the same model (a second render) shares the cache.
    expect(await new ChunkStore(model).get({ stack: "self", layer: 1, head: 2 })).toBe(await first);
    expect(new ChunkStore(model).peek({ stack: "self", layer: 1, head: 2 })).toBe(await first);
    expect(model.sent()).toHaveLength(1);
  });

  it("rejects with Python's error and does not ask again", async () => {
    const model = fakeModel({ preload: "none" });
    initialize(model);
    const store = new ChunkStore(model);
    const pending = store.get({ stack: "self", layer: 0, head: 2 });
    model.reply({ kind: "response", id: model.sent()[0].id, error: "layer 0 is gone" });
    await expect(pending).rejects.toThrow("layer 0 is gone");
    await expect(store.get({ stack: "self", layer: 0, head: 2 })).rejects.toThrow("layer 0 is gone");
    expect(model.sent()).toHaveLength(1);
  });

  it("rejects a chunk whose size does not match meta", async () => {
    const model = fakeModel({ preload: "none" });
    initialize(model);
    const pending = new ChunkStore(model).get({ stack: "self", layer: 0, head: 2 });
    model.reply({ kind: "response", id: model.sent()[0].id, what: "attention" }, [new DataView(new ArrayBuffer(10))]);
    await expect(pending).rejects.toThrow(/has 10 bytes, expected 64/);
  });

  it("ignores answers to other requests", async () => {
    const model = fakeModel({ preload: "none" });
    initialize(model);
    let settled = false;
    new ChunkStore(model).get({ stack: "self", layer: 0, head: 2 }).finally(() => (settled = true));
    model.reply({ kind: "response", id: 987654, what: "attention" }, [offsetView(headBytes(0, 2, 8, 8))]);
    model.reply({ something: "else" });
    await settle();
    expect(settled).toBe(false);
  });

  it("takes a requested chunk from _chunks when Python pushes it there instead", async () => {
    const model = fakeModel({ preload: "none" });
    initialize(model);
    const pending = new ChunkStore(model).get({ stack: "self", layer: 1, head: 2 });
    model.fromPython({ _chunks: { "self/1/2": offsetView(headBytes(1, 2, 8, 8)) } });
    expect([...(await pending)]).toEqual([...headBytes(1, 2, 8, 8)]);
  });

  it("starts afresh when Python replaces the data", async () => {
    const model = fakeModel();
    initialize(model);
    const store = new ChunkStore(model);
    const before = await store.get({ stack: "self", layer: 0, head: 2 });
    const other = buildFixture({ tokens: ["a", "b"] });
    model.fromPython({ meta: other.meta, _chunks: other.chunks });
    const after = await store.get({ stack: "self", layer: 0, head: 2 });
    expect(after).not.toBe(before);
    expect(after).toHaveLength(2 * 2);
  });

  it("does not ask when meta says every chunk was sent, as in an exported page", async () => {
    const model = fakeModel();
    model.fromPython({ _chunks: {} });
    initialize(model);
    await expect(new ChunkStore(model).get({ stack: "self", layer: 1, head: 2 })).rejects.toThrow("attention chunk self/1/2 is missing");
    expect(model.sent()).toEqual([]);
  });

  it("asks again for a head the cache evicted, and keeps what one view shows however large", async () => {
    const tokens = Array.from({ length: 1200 }, (_, i) => `t${i}`); // 1.44 MB a head: 256 MiB holds 186 of them
    const model = fakeModel({ tokens, layers: 40, heads: 8, preload: "none", thumbnails: false });
    initialize(model);
    const store = new ChunkStore(model);
    const answer = () => {
      for (const request of model.sent().slice(answered)) {
        model.reply({ kind: "response", id: request.id, what: "attention" }, [new Uint8Array(tokens.length ** 2)]);
      }
      answered = model.sent().length;
    };
    let answered = 0;
    for (let layer = 0; layer < 40; layer++) {
      for (let head = 0; head < 8; head++) void store.get({ stack: "self", layer, head });
      answer();
      await settle();
    }
    expect(store.peek({ stack: "self", layer: 39, head: 7 })).toBeDefined();
    expect(store.peek({ stack: "self", layer: 0, head: 0 })).toBeUndefined(); // evicted: the least recently used
    void store.get({ stack: "self", layer: 0, head: 0 });
    expect(model.sent()[model.sent().length - 1]).toMatchObject({ what: "attention", stack: "self", layer: 0, head: 0 });
  });

  it("stops listening when initialize's cleanup runs", () => {
    const model = fakeModel();
    const stop = listenForChunks(model);
    expect(model.listenerCount()).toBe(2);
    stop();
    expect(model.listenerCount()).toBe(0);
  });
});

describe("LRU cache", () => {
  it("evicts the least recently used past its budget, never the newest `kept`", () => {
    const evicted: string[] = [];
    const cache = new LruCache<string>(10, 2, (key) => evicted.push(key));
    cache.set("a", "A", 4);
    cache.set("b", "B", 4);
    expect(cache.get("a")).toBe("A"); // now b is the least recently used
    cache.set("c", "C", 4);
    expect(evicted).toEqual(["b"]);
    expect(cache.bytes).toBe(8);
    cache.set("d", "D", 30); // over budget alone, but the newest two stay
    expect(evicted).toEqual(["b", "a"]);
    expect([cache.get("c"), cache.get("d")]).toEqual(["C", "D"]);
    expect(cache.bytes).toBe(34);
  });

  it("counts a value set again once", () => {
    const cache = new LruCache<string>(10, 1, () => {});
    cache.set("a", "A", 4);
    cache.set("a", "A2", 5);
    expect(cache.bytes).toBe(5);
    expect(cache.get("a")).toBe("A2");
  });
});
