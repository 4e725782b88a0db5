import { afterEach, describe, expect, it } from "vitest";
import { ChunkStore } from "../chunks";
import { toUint8 } from "../contract";
import { buildFixture } from "../test/fixtures";
import { settle } from "../test/mount";
import widget from "../widget";
import { PageModel } from "./page-model";
import { decodeTraits, type ExportState } from "./state";

/** An exported page's model whose budget kept the heads of layer 0 only. */
function pageModelWithLayerZero(): PageModel {
  const { traits } = buildFixture();
  const kept = Object.fromEntries(Object.entries(traits._chunks).filter(([key]) => key.startsWith("self/0/")));
  return new PageModel({ ...traits, _chunks: kept, meta: { ...traits.meta, chunks_complete: false } });
}

/** A value as export.py writes it into a page: base64 of its zlib stream. */
async function packedText(bytes: Uint8Array): Promise<string> {
  const stream = new Response(bytes as Uint8Array<ArrayBuffer>).body!.pipeThrough(new CompressionStream("deflate"));
  const deflated = new Uint8Array(await new Response(stream).arrayBuffer());
  return btoa(Array.from(deflated, (byte) => String.fromCharCode(byte)).join(""));
}

/** The state of a page that holds every head of the fixture, focused on head 1 of layer 0, as export.py writes it. */
async function exportState(): Promise<{ state: ExportState; chunks: Record<string, Uint8Array> }> {
  const { traits } = buildFixture();
  const chunks = Object.fromEntries(Object.entries(traits._chunks).map(([key, value]) => [key, toUint8(value)]));
  const pack = async (values: Record<string, Uint8Array>) => {
    const texts = Object.entries(values).map(async ([key, bytes]) => [key, await packedText(bytes)]);
    return Object.fromEntries(await Promise.all(texts));
  };
  const thumbs = Object.fromEntries(Object.entries(traits._thumbs).map(([key, value]) => [key, toUint8(value)]));
  const { _chunks, _thumbs, _qk, ...plain } = traits;
  const state: ExportState = {
    traits: { ...plain, layer: 0, head: 1 },
    binary: { _thumbs: await pack(thumbs), _chunks: await pack(chunks) },
    compression: "deflate",
  };
  return { state, chunks };
}

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((cleanup) => cleanup()));

describe("the in-page model of an export", () => {
  it("fires a change event per real change, like Backbone, and keeps the value", () => {
    const model = pageModelWithLayerZero();
    const seen: number[] = [];
    const onLayer = () => seen.push(model.get("layer"));
    model.on("change:layer", onLayer);
    model.set("layer", 1);
    model.set("layer", 1);
    model.save_changes();
    model.off("change:layer", onLayer);
    model.set("layer", 0);
    expect(seen).toEqual([1]);
    expect(model.get("layer")).toBe(0);
  });

  it("answers a request for a layer left out with an error, after the asker listens", async () => {
    const model = pageModelWithLayerZero();
    const answers: unknown[] = [];
    model.on("msg:custom", (content: unknown) => answers.push(content));
    model.send({ kind: "request", id: 4, what: "attention", stack: "self", layer: 1, head: 2 });
    expect(answers).toEqual([]);
    await settle();
    const error = expect.stringMatching(/leaves out the attention of head 2 of layer 1 \(self\).*size budget/);
    expect(answers).toEqual([{ kind: "response", id: 4, error }]);
  });

  it("lets the chunk store serve kept layers and reject left-out ones instead of waiting", async () => {
    const model = pageModelWithLayerZero();
    cleanups.push(widget.initialize({ model }));
    const store = new ChunkStore(model);
    expect((await store.get({ stack: "self", layer: 0, head: 2 })).length).toBe(8 * 8);
    await expect(store.get({ stack: "self", layer: 1, head: 2 })).rejects.toThrow(/size budget/);
  });

  it("shows a left-out layer as unavailable in the view", async () => {
    const model = pageModelWithLayerZero();
    const host = document.createElement("div");
    document.body.append(host);
    cleanups.push(widget.initialize({ model }), widget.render({ model, el: host }), () => host.remove());
    model.set("layer", 1);
    await settle();
    expect(host.querySelector(".aw-status")!.textContent).toMatch(/Could not load layer 1: .*size budget/);
  });

  it("opens with the thumbnails and the focused head inflated, and inflates another head when a view asks", async () => {
    const { state, chunks } = await exportState();
    const { traits, packed } = await decodeTraits(state);
    expect(Object.keys(traits._chunks)).toEqual(["self/0/1"]);
    expect(Object.keys(traits._thumbs).length).toBe(Object.keys(state.binary._thumbs).length);
    const model = new PageModel(traits, packed);
    cleanups.push(widget.initialize({ model }));
    let changes = 0;
    model.on("change:_chunks", () => changes++);
    const store = new ChunkStore(model);
    const [head0, head2] = await Promise.all([
      store.get({ stack: "self", layer: 1, head: 0 }),
      store.get({ stack: "self", layer: 1, head: 2 }),
    ]);
    expect(head0).toEqual(chunks["self/1/0"]);
    expect(head2).toEqual(chunks["self/1/2"]);
    expect(changes).toBe(1); // asked in one turn, inflated together
    expect(store.peek({ stack: "self", layer: 1, head: 0 })).toEqual(chunks["self/1/0"]);
  });

  it("puts a held head's chunk where the views look when they ask for its top keys or a tile", async () => {
    const { state, chunks } = await exportState();
    const { traits, packed } = await decodeTraits(state);
    const model = new PageModel(traits, packed);
    const answers: unknown[] = [];
    model.on("msg:custom", (content: unknown) => answers.push(content));
    const changed = new Promise((resolve) => model.on("change:_chunks", resolve));
    model.send({ kind: "request", id: 5, what: "top_keys", stack: "self", layer: 0, head: 2, k: 4 });
    await changed;
    expect(toUint8(model.get("_chunks")["self/0/2"])).toEqual(chunks["self/0/2"]);
    expect(answers).toEqual([]); // the views read the chunk instead
  });

  it("inflates the rest once asked to, without redrawing views that wait for none of it", async () => {
    const { state, chunks } = await exportState();
    const { traits, packed } = await decodeTraits(state);
    const model = new PageModel(traits, packed);
    let changes = 0;
    model.on("change:_chunks", () => changes++);
    await model.inflateRest(async () => {});
    const held = Object.entries(model.get("_chunks")).map(([key, value]) => [key, toUint8(value)]);
    expect(Object.fromEntries(held)).toEqual(chunks);
    expect(changes).toBe(0);
  });
});
