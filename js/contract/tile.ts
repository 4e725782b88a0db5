// Tiles (docs/data-contract.md, "Tiles"): a region of one head pooled to the matrix view's pixels, answered by
// Python as little-endian float32 values, so weights far below a byte's 1/255 step keep their digits.

import { headKey, toUint8 } from "./binary";
import type { PooledRegion, TileWhere } from "./messages";
import type { Binary, Meta } from "./traits";
import { stackInfo } from "./traits";

/** A region of one head pooled to `rows` × `columns`: a tile from Python, or pooled in the browser from a chunk. */
export interface Grid extends PooledRegion {
  /** rows × columns pooled probabilities, row-major. */
  values: Float32Array;
  /** Each pooled row's largest value over all its keys and its sink weight: the full colour of a per-row scale. */
  rowPeaks: Float32Array;
  /** The pooled sink weight of each row, for a layer with sinks; else null. */
  sinks: Float32Array | null;
  /** The region's largest value (sink weights included), and its largest past key 0 (key 0 and the sink left out). */
  peak: number;
  peakPastFirst: number;
  /** The step of the values: 1/255 where they come from a byte chunk or thumbnail, 0 for a float32 tile. */
  step: number;
}

/** The cache key of a tile: its head, region, size and pooling. */
export function tileKey(where: TileWhere): string {
  const { stack, layer, head, q0, q1, k0, k1, rows, columns, pooling } = where;
  return `${headKey(stack, layer, head)}/${q0}-${q1}x${k0}-${k1}/${rows}x${columns}/${pooling}`;
}

/** Values in a tile: the two peaks, the cells, the row peaks and, with sinks, the sink weights. */
export function tileLength(rows: number, columns: number, hasSinks: boolean): number {
  return 2 + rows * columns + rows * (hasSinks ? 2 : 1);
}

/** A tile's buffer as a Grid, checked against the request before any view indexes into it. */
export function decodeTile(meta: Meta, where: TileWhere, binary: Binary): Grid {
  const info = stackInfo(meta, where.stack);
  const hasSinks = !!info?.stack.has_sinks?.[where.layer];
  const { rows, columns } = where;
  const length = tileLength(rows, columns, hasSinks);
  let bytes = toUint8(binary);
  if (bytes.byteLength !== length * 4) {
    throw new Error(
      `tile ${tileKey(where)} has ${bytes.byteLength} bytes, expected ${length * 4} (float32: 2 peaks, ` +
        `rows × columns values, rows row peaks${hasSinks ? ", rows sink weights" : ""}); re-create the widget`,
    );
  }
  // A message's buffer may start at any byte; float32 views need a multiple of 4.
  if (bytes.byteOffset % 4 !== 0) bytes = bytes.slice();
  const all = new Float32Array(bytes.buffer, bytes.byteOffset, length);
  const cells = rows * columns;
  return {
    q0: where.q0,
    q1: where.q1,
    k0: where.k0,
    k1: where.k1,
    rows,
    columns,
    values: all.subarray(2, 2 + cells),
    rowPeaks: all.subarray(2 + cells, 2 + cells + rows),
    sinks: hasSinks ? all.subarray(2 + cells + rows) : null,
    peak: all[0],
    peakPastFirst: all[1],
    step: 0,
  };
}
