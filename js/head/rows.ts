// Virtual token columns: which rows of a long column are in the DOM for a scroll position, and which band of rows
// the head view's line layers cover, so scrolling a few rows redraws no line.

/** Rows kept in the DOM beyond each edge of the view: keyboard steps and fast wheels land on rows already there. */
export const ROW_MARGIN = 12;

/** The rows `[first, last)` of a column of `count` rows to put in the DOM when the view shows `viewTop` to
 *  `viewTop + viewHeight` (CSS pixels from the column's top). */
export function rowWindow(viewTop: number, viewHeight: number, rowHeight: number, count: number, margin = ROW_MARGIN): [number, number] {
  const first = Math.max(0, Math.floor(viewTop / rowHeight) - margin);
  const last = Math.min(count, Math.ceil((viewTop + viewHeight) / rowHeight) + margin);
  return [Math.min(first, last), last];
}

/** A stretch of the columns, in CSS pixels from their top. */
export interface Band {
  top: number;
  height: number;
}

/** The band the layers draw for a view: the view and half as much again above and below (within the columns), so
 *  scrolling up to half a view either way only moves the layers. Wider bands move less often but cost more to
 *  repaint: a layer's lines are rastered over the band's height. */
export function bandAround(viewTop: number, viewHeight: number, total: number): Band {
  const margin = Math.round(viewHeight / 2);
  const top = Math.max(0, viewTop - margin);
  return { top, height: Math.max(0, Math.min(total, viewTop + viewHeight + margin) - top) };
}

/** Whether `band` holds the whole view. */
export const bandHolds = (band: Band, viewTop: number, viewHeight: number) =>
  viewTop >= band.top && viewTop + viewHeight <= band.top + band.height;

/** Whether a line from height `y0` to `y1` has an end in the band. The layers draw only those: the lines of the
 *  rows within a view's height of what is in view. A line between two rows far off screen that only passes
 *  through would cost as much to raster as one of the rows in view (at 4096 tokens, thousands of them per head go
 *  to the first token) and says nothing about them. */
export const endsInBand = (band: Band, y0: number, y1: number) => {
  const inside = (y: number) => y >= band.top && y <= band.top + band.height;
  return inside(y0) || inside(y1);
};
