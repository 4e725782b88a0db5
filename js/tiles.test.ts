import { describe, expect, it } from "vitest";
import { tileLength, type TileWhere } from "./contract";
import { fakeModel } from "./test/fixtures";
import { initialize, settle } from "./test/mount";
import { TILE_CACHE_BYTES, TileStore } from "./tiles";

const where = (q0: number, rows = 2, columns = 3): TileWhere => ({
  stack: "self", layer: 1, head: 2, q0, q1: q0 + rows, k0: 0, k1: columns, rows, columns, pooling: "max",
}); // prettier-ignore

/** A tile's buffer as Python writes it, in a DataView starting at an odd byte, as widget managers may deliver it. */
function tileBuffer(values: number[]): DataView {
  const buffer = new ArrayBuffer(values.length * 4 + 3);
  const view = new DataView(buffer, 3, values.length * 4);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return view;
}

/** Python's answer to `request`: a tile of one value. */
function answer(model: ReturnType<typeof fakeModel>, request: TileWhere & { id: number }) {
  const values = new Float32Array(tileLength(request.rows, request.columns, false)).fill(0.5);
  model.reply({ ...request, kind: "response", what: "tile", dtype: "float32" }, [new DataView(values.buffer)]);
}

describe("tile store", () => {
  it("asks Python once per region, size and pooling, and decodes its float32 values", async () => {
    const model = fakeModel();
    initialize(model);
    const store = new TileStore(model);
    const pending = store.get(where(0));
    store.get(where(0));
    expect(model.sent()).toEqual([{ kind: "request", id: expect.any(Number), what: "tile", ...where(0) }]);
    const values = [0.9, 0.4, 1e-5, 2e-4, 0.3, 0, 0.25, 0.125, 0.3, 0.25];
    model.reply({ ...model.sent()[0], kind: "response", what: "tile", dtype: "float32" }, [tileBuffer(values)]);
    const grid = await pending;
    expect([grid.peak, grid.peakPastFirst]).toEqual([0.9, 0.4].map(Math.fround));
    expect([...grid.values]).toEqual([1e-5, 2e-4, 0.3, 0, 0.25, 0.125].map(Math.fround));
    expect([...grid.rowPeaks]).toEqual([0.3, 0.25].map(Math.fround));
    expect(grid.sinks).toBeNull();
    expect(store.peek(where(0))).toBe(grid);
    store.get({ ...where(0), pooling: "mean" });
    expect(model.sent()).toHaveLength(2);
  });

  it("rejects a tile whose size does not match what was asked for", async () => {
    const model = fakeModel();
    initialize(model);
    const pending = new TileStore(model).get(where(0));
    model.reply({ ...model.sent()[0], kind: "response" }, [tileBuffer([1, 2, 3])]);
    await expect(pending).rejects.toThrow(/has 12 bytes, expected 40 \(float32/);
  });

  it("keeps tiles within its byte budget, least recently used out first, and asks again for an evicted one", async () => {
    const model = fakeModel();
    initialize(model);
    const store = new TileStore(model);
    // Three tiles of 2048 × 1024 float32 (8 MiB each) fit; a fourth evicts the oldest not used since.
    const big = (q0: number) => where(q0, 2048, 1024);
    for (const q0 of [0, 1, 2]) {
      store.get(big(q0));
      answer(model, model.sent().slice(-1)[0]);
      await settle();
    }
    expect(store.peek(big(0))).toBeDefined(); // now the most recently used
    store.get(big(3));
    answer(model, model.sent().slice(-1)[0]);
    await settle();
    expect(4 * 8 * 2 ** 20).toBe(TILE_CACHE_BYTES); // four with their row peaks are over it
    expect(store.peek(big(1))).toBeUndefined();
    expect([0, 2, 3].map((q0) => store.peek(big(q0)) !== undefined)).toEqual([true, true, true]);
    const asked = model.sent().length;
    store.get(big(1));
    expect(model.sent()).toHaveLength(asked + 1);
  });
});
