import { describe, expect, it } from "vitest";
import { ChunkStore, listenForChunks } from "./chunks";
import { buildFixture, chunkBytes, fakeModel, offsetView } from "./test/fixtures";
import { initialize, settle } from "./test/mount";

describe("chunk store", () => {
  it("serves preloaded _chunks without asking Python", async () => {
    const model = fakeModel();
    initialize(model);
    const bytes = await new ChunkStore(model).get("self", 1);
    expect([...bytes]).toEqual([...chunkBytes(1, 3, 8, 8)]);
    expect(model.sent()).toEqual([]);
  });

  it("asks once over a custom message when a chunk is not preloaded, and caches the answer", async () => {
    const model = fakeModel({ preload: "none" });
    initialize(model);
    const store = new ChunkStore(model);
    const first = store.get("self", 1);
    const again = store.get("self", 1);
    expect(model.sent()).toEqual([{ kind: "request", id: expect.any(Number), what: "attention", stack: "self", layer: 1 }]);
    const { id } = model.sent()[0];
    const expected = chunkBytes(1, 3, 8, 8);
    model.reply({ kind: "response", id, what: "attention", stack: "self", layer: 1, dtype: "uint8", shape: [3, 8, 8] }, [offsetView(expected, 9)]);
    expect([...(await first)]).toEqual([...expected]);
    expect(await again).toBe(await first);
    // A second store of the same model (a second render) shares the cache.
    expect(await new ChunkStore(model).get("self", 1)).toBe(await first);
    expect(new ChunkStore(model).peek("self", 1)).toBe(await first);
    expect(model.sent()).toHaveLength(1);
  });

  it("rejects with Python's error and does not ask again", async () => {
    const model = fakeModel({ preload: "none" });
    initialize(model);
    const store = new ChunkStore(model);
    const pending = store.get("self", 0);
    model.reply({ kind: "response", id: model.sent()[0].id, error: "layer 0 is gone" });
    await expect(pending).rejects.toThrow("layer 0 is gone");
    await expect(store.get("self", 0)).rejects.toThrow("layer 0 is gone");
    expect(model.sent()).toHaveLength(1);
  });

  it("rejects a chunk whose size does not match meta", async () => {
    const model = fakeModel({ preload: "none" });
    initialize(model);
    const pending = new ChunkStore(model).get("self", 0);
    model.reply({ kind: "response", id: model.sent()[0].id, what: "attention" }, [new DataView(new ArrayBuffer(10))]);
    await expect(pending).rejects.toThrow(/has 10 bytes, expected 192/);
  });

  it("ignores answers to other requests", async () => {
    const model = fakeModel({ preload: "none" });
    initialize(model);
    let settled = false;
    new ChunkStore(model).get("self", 0).finally(() => (settled = true));
    model.reply({ kind: "response", id: 987654, what: "attention" }, [offsetView(chunkBytes(0, 3, 8, 8))]);
    model.reply({ something: "else" });
    await settle();
    expect(settled).toBe(false);
  });

  it("takes a requested chunk from _chunks when Python pushes it there instead", async () => {
    const model = fakeModel({ preload: "none" });
    initialize(model);
    const pending = new ChunkStore(model).get("self", 1);
    model.fromPython({ _chunks: { "self/1": offsetView(chunkBytes(1, 3, 8, 8)) } });
    expect([...(await pending)]).toEqual([...chunkBytes(1, 3, 8, 8)]);
  });

  it("starts afresh when Python replaces the data", async () => {
    const model = fakeModel();
    initialize(model);
    const store = new ChunkStore(model);
    const before = await store.get("self", 0);
    const other = buildFixture({ tokens: ["a", "b"] });
    model.fromPython({ meta: other.meta, _chunks: other.chunks });
    const after = await store.get("self", 0);
    expect(after).not.toBe(before);
    expect(after).toHaveLength(3 * 2 * 2);
  });

  it("does not ask when meta says every chunk was sent, as in an exported page", async () => {
    const model = fakeModel();
    model.fromPython({ _chunks: {} });
    initialize(model);
    await expect(new ChunkStore(model).get("self", 1)).rejects.toThrow("attention chunk self/1 is missing");
    expect(model.sent()).toEqual([]);
  });

  it("stops listening when initialize's cleanup runs", () => {
    const model = fakeModel();
    const stop = listenForChunks(model);
    expect(model.listenerCount()).toBe(2);
    stop();
    expect(model.listenerCount()).toBe(0);
  });
});
