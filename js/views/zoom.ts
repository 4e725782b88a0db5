// Where the matrix view looks: a zoom factor and the top-left cell on screen, over a map of nq × nk cells drawn
// square. Zoom 1 shows the whole map in the view's plot area; each step keeps the cell under the pointer where it
// is, and the view never leaves the map. Pure maths, so it is tested without a canvas.

export interface Viewport {
  /** 1: the whole map; z: 1/z of each side. */
  zoom: number;
  /** The cell at the plot's top-left corner, fractional. */
  q0: number;
  k0: number;
}

/** The map's size and how far in the view may zoom. */
export interface Extent {
  nq: number;
  nk: number;
  maxZoom: number;
}

export const WHOLE_MAP: Viewport = { zoom: 1, q0: 0, k0: 0 };

/** Single cells are this many CSS pixels at the deepest zoom: wide enough to point at one and read it. */
export const CELL_AT_MAX_ZOOM = 24;

/** The zoom at which a cell `baseCell` pixels wide at zoom 1 becomes `CELL_AT_MAX_ZOOM` wide (at least 1). */
export const maxZoomFor = (baseCell: number) => Math.max(1, CELL_AT_MAX_ZOOM / baseCell);

/** Rows and columns of cells on screen. */
export function span(view: Viewport, extent: Extent): { rows: number; columns: number } {
  return { rows: extent.nq / view.zoom, columns: extent.nk / view.zoom };
}

/** The view with its zoom in [1, maxZoom] and its corner where the whole plot stays on the map. */
export function clampView(view: Viewport, extent: Extent): Viewport {
  const zoom = Math.min(extent.maxZoom, Math.max(1, view.zoom));
  const clamped = { zoom, q0: 0, k0: 0 };
  const { rows, columns } = span(clamped, extent);
  clamped.q0 = Math.min(extent.nq - rows, Math.max(0, view.q0));
  clamped.k0 = Math.min(extent.nk - columns, Math.max(0, view.k0));
  return clamped;
}

/** Zoomed by `factor` (> 1: in) around the point at fractions (x, y) of the plot's width and height: the cell
 *  there stays there, unless the view would leave the map. */
export function zoomAround(view: Viewport, extent: Extent, factor: number, x: number, y: number): Viewport {
  const before = span(view, extent);
  const anchorQ = view.q0 + y * before.rows;
  const anchorK = view.k0 + x * before.columns;
  const zoom = Math.min(extent.maxZoom, Math.max(1, view.zoom * factor));
  const after = span({ ...view, zoom }, extent);
  return clampView({ zoom, q0: anchorQ - y * after.rows, k0: anchorK - x * after.columns }, extent);
}

/** Moved by `rows` down and `columns` right, in cells, within the map. */
export function panBy(view: Viewport, extent: Extent, rows: number, columns: number): Viewport {
  return clampView({ ...view, q0: view.q0 + rows, k0: view.k0 + columns }, extent);
}

/** The cell at fractions (x, y) of the plot, fractional: floor it for the cell's index. */
export function cellAt(view: Viewport, extent: Extent, x: number, y: number): [q: number, k: number] {
  const { rows, columns } = span(view, extent);
  return [view.q0 + y * rows, view.k0 + x * columns];
}

/** The whole cells any part of which is on screen: [q0, q1) × [k0, k1). */
export function visibleRegion(view: Viewport, extent: Extent): { q0: number; q1: number; k0: number; k1: number } {
  const { rows, columns } = span(view, extent);
  // A hair of tolerance: 0.1 + 0.2 style rounding must not add a row that is not on screen.
  const first = (x: number) => Math.max(0, Math.floor(x + 1e-9));
  const end = (x: number, n: number) => Math.min(n, Math.ceil(x - 1e-9));
  return { q0: first(view.q0), q1: end(view.q0 + rows, extent.nq), k0: first(view.k0), k1: end(view.k0 + columns, extent.nk) };
}
