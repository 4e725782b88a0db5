import { afterEach, describe, expect, it } from "vitest";
import { ChunkStore } from "../chunks";
import { buildFixture } from "../test/fixtures";
import { settle } from "../test/mount";
import widget from "../widget";
import { PageModel } from "./page-model";

/** An exported page's model whose budget kept the heads of layer 0 only. */
function pageModelWithLayerZero(): PageModel {
  const { traits } = buildFixture();
  const kept = Object.fromEntries(Object.entries(traits._chunks).filter(([key]) => key.startsWith("self/0/")));
  return new PageModel({ ...traits, _chunks: kept, meta: { ...traits.meta, chunks_complete: false } });
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
});
