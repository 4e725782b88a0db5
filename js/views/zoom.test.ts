import { describe, expect, it } from "vitest";
import { CELL_AT_MAX_ZOOM, WHOLE_MAP, cellAt, clampView, maxZoomFor, panBy, span, visibleRegion, zoomAround, type Extent } from "./zoom";

// 4096 tokens drawn 800 pixels wide: a cell is 0.195 px at zoom 1.
const BASE_CELL = 800 / 4096;
const EXTENT: Extent = { nq: 4096, nk: 4096, maxZoom: maxZoomFor(BASE_CELL) };

describe("matrix zoom and pan", () => {
  it("keeps the cell under the pointer where it is as it zooms in and out", () => {
    let view = WHOLE_MAP;
    const [x, y] = [0.3, 0.7];
    const anchor = cellAt(view, EXTENT, x, y);
    for (const factor of [1.5, 3, 2, 0.8]) {
      view = zoomAround(view, EXTENT, factor, x, y);
      const [q, k] = cellAt(view, EXTENT, x, y);
      expect(q).toBeCloseTo(anchor[0], 6);
      expect(k).toBeCloseTo(anchor[1], 6);
    }
    expect(view.zoom).toBeCloseTo(1.5 * 3 * 2 * 0.8, 9);
  });

  it("never leaves the map: clamped at its edges when zooming near a corner or panning past one", () => {
    const zoomed = zoomAround(WHOLE_MAP, EXTENT, 4, 1, 1); // the bottom-right corner
    expect([zoomed.q0, zoomed.k0]).toEqual([3072, 3072]);
    const panned = panBy(zoomed, EXTENT, 5000, -9000);
    expect([panned.q0, panned.k0]).toEqual([3072, 0]);
    // Zooming out past the whole map gives the whole map back.
    expect(zoomAround(panned, EXTENT, 0.01, 0.5, 0.5)).toEqual(WHOLE_MAP);
    expect(clampView({ zoom: 0.5, q0: -3, k0: 7 }, EXTENT)).toEqual(WHOLE_MAP);
  });

  it("zooms down to single cells a pointer can rest on, and no further", () => {
    let view = WHOLE_MAP;
    for (let i = 0; i < 40; i++) view = zoomAround(view, EXTENT, 1.5, 0.5, 0.5);
    expect(view.zoom).toBe(EXTENT.maxZoom);
    expect(BASE_CELL * view.zoom).toBeCloseTo(CELL_AT_MAX_ZOOM, 9);
    const { rows, columns } = span(view, EXTENT);
    expect([rows, columns].map((n) => n * BASE_CELL * view.zoom)).toEqual([800, 800].map((n) => expect.closeTo(n, 6)));
    const region = visibleRegion(view, EXTENT);
    expect(region.q1 - region.q0).toBeLessThanOrEqual(Math.ceil(800 / CELL_AT_MAX_ZOOM) + 1);
    expect(region.q0).toBeGreaterThan(2000);
    // A map that already shows cells that big does not zoom at all.
    expect(maxZoomFor(30)).toBe(1);
  });

  it("says which whole cells are on screen", () => {
    const view = { zoom: 8, q0: 10.5, k0: 100 };
    expect(visibleRegion(view, EXTENT)).toEqual({ q0: 10, q1: 523, k0: 100, k1: 612 });
    expect(visibleRegion(WHOLE_MAP, { nq: 7, nk: 5, maxZoom: 1 })).toEqual({ q0: 0, q1: 7, k0: 0, k1: 5 });
  });
});
