// The matrix view's tiles (docs/data-contract.md, "Tiles"): a region of one head pooled by Python to the canvas'
// pixels, asked for like attention chunks (js/chunks.ts), never preloaded. A zoom asks for a new region at each
// step, so the cache is small; the view draws an answer only while it still shows that region.

import { DataStore, listenForData, type DataKindSpec } from "./chunks";
import { WHAT, decodeTile, tileKey, type Grid, type TileWhere, type WidgetModel } from "./contract";

/** Bytes of tiles a page keeps: a dozen canvases' worth of float32 values. */
export const TILE_CACHE_BYTES = 32 * 2 ** 20;

const TILE: DataKindSpec<Grid, TileWhere> = {
  what: WHAT.tile,
  key: tileKey,
  decode: decodeTile,
  // An exported page answers with the error that says the head was left out; a kernel answers tiles of any head.
  unaskable: () => null,
  size: (grid) => grid.values.byteLength + grid.rowPeaks.byteLength + (grid.sinks?.byteLength ?? 0),
  // The overview and the region on screen.
  kept: () => 2,
  budget: TILE_CACHE_BYTES,
};

export const listenForTiles = (model: WidgetModel) => listenForData(model, TILE);

export class TileStore extends DataStore<Grid, TileWhere> {
  constructor(model: WidgetModel) {
    super(model, TILE);
  }
}
