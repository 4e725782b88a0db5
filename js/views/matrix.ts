// Matrix view: the focused head as a heatmap, query rows × key columns, that zooms from the whole map down to
// single cells (wheel or pinch around the pointer, drag to pan, + − arrows 0 on the focused map). What is drawn is
// pooled to the canvas' pixels, max or mean (js/views/pool.ts), so thousands of tokens stay one drawImage: from
// the head's chunk when the browser has it (short inputs, or an export that holds the head), otherwise from tiles
// Python pools for the region on screen (js/tiles.ts), or, where nothing can answer (an export without the head),
// from the head's thumbnail, unzoomable.
// A layer with a sink, one more key that is no token of the text (GPT-OSS's learned sinks, CPM-Ant's prompt
// positions, global tokens), gets one more column, set apart and named as meta names it: the weight each query
// gives it. It is a key of the same softmax, so it shares the heatmap's colour scale.

import {
  TILE_POOLINGS,
  chunkKey,
  headKey,
  headLength,
  headSinkWeights,
  asSigned,
  headThumbnail,
  isSigned,
  layerHasSinks,
  sinkOf,
  thumbnailShape,
  tileKey,
  valueStep,
  type Grid,
  type Pooling,
  type StackInfo,
  type TileWhere,
  type WatchedTrait,
  type WidgetModel,
} from "../contract";
import { fitText, imageCanvas, observeSize, prepareCanvas, textWidth } from "../draw/canvas";
import { css, headColor } from "../draw/colors";
import { divergingGradient, paintSigned } from "../draw/diverging";
import { el, listen, listenKeys } from "../draw/dom";
import { exact } from "../draw/format";
import type { Painter } from "../draw/painter";
import {
  CURVE_NAMES,
  RANGE_NAMES,
  curveDescription,
  defaultScale,
  fullColorLabel,
  paintValues,
  scaleGradient,
  type ColorScale,
  type ScaleCurve,
  type ScaleRange,
} from "../draw/scale";
import { UI_FONT as LABEL_FONT, ink } from "../draw/text";
import { TileStore } from "../tiles";
import { headChips } from "./chips";
import { labelledSelect, readoutHeading } from "./parts";
import { poolHead, thumbnailGrid, type HeadBytes, type Region } from "./pool";
import { Lifetime, viewOf, type Snapshot, type View, type ViewContext } from "./view";
import { WHOLE_MAP, cellAt as viewCellAt, clampView, maxZoomFor, panBy, span, visibleRegion, zoomAround, type Extent, type Viewport } from "./zoom";

const MAX_CELL = 22;
/** Vertical room one label needs; rows closer than this get every k-th label only. */
const LABEL_SPACING = 13;
const MAX_GUTTER = 150;
/** Width of a saved image when the view has not been laid out. */
const IMAGE_WIDTH = 640;
const LEGEND = { height: 24, bar: 160 };
/** Where sentence B starts, in a colour the blue ramp does not have. */
const SEGMENT_B = { light: "#d4380d", dark: "#ffa940" };
/** The sink column: apart from the keys by a gap, and never thinner than this, so it shows at thousands of tokens. */
const SINK = { gap: 6, minWidth: 8 };
/** A head up to this many bytes is fetched whole and pooled here (2048 tokens); a larger one is asked for as tiles. */
const LOCAL_HEAD_BYTES = 4 * 2 ** 20;
/** The most rows or columns a tile has (wire.MAX_TILE_SIDE). */
const MAX_TILE_SIDE = 2048;
/** After the last zoom or pan step, wait this long before asking Python for the region: a wheel sends dozens. */
const TILE_DELAY_MS = 60;
/** A region up to this many cells is pooled at each step (about 4 ms); a larger one once the steps pause. */
const POOL_AT_ONCE_CELLS = 2 ** 20;
/** Zoom per pixel of wheel travel; a pinch arrives as ctrl+wheel with small deltas, so it counts more. */
const WHEEL_ZOOM = { wheel: 0.002, pinch: 0.01, linePixels: 16 };
/** A key press zooms by this factor, or pans by this share of the view. */
const KEY_STEP = { zoom: 1.5, pan: 0.2 };
/** A press that moves further than this is a drag (a pan), not a click on a row. */
const DRAG_PIXELS = 3;

/** The colour scale and pooling chosen in each widget, kept while the page is open so switching views keeps them. */
const chosen = new WeakMap<WidgetModel, { scale: ColorScale; pooling: Pooling }>();

interface Layout {
  left: number;
  top: number;
  /** A cell's side at zoom 1. */
  cell: number;
  width: number;
  height: number;
  /** Width of the sink column, 0 when the layer has none. */
  sink: number;
}

/** Where the focused head's values come from. */
type Source =
  | { kind: "bytes"; head: HeadBytes }
  | { kind: "tiles" }
  /** The thumbnail: while the head loads (`why` null), or for good, with why the head's data cannot come. */
  | { kind: "thumbnail"; grid: Grid | null; why: string | null };

/** Every k-th index, so labels never overlap: k = 1 when cells are tall enough for text. */
export function labelStep(cell: number): number {
  return Math.max(1, Math.ceil(LABEL_SPACING / cell));
}

/** The widest label of a token list, up to the gutter's width, measured once per list: 4096 tokens take 20 ms. */
const widest = new WeakMap<string[], number>();
function longest(tokens: string[]): number {
  let width = widest.get(tokens);
  if (width === undefined) widest.set(tokens, (width = Math.min(MAX_GUTTER, Math.max(0, ...tokens.map((t) => textWidth(t, LABEL_FONT))))));
  return width;
}

/** Whether either axis has a sentence B to mark. */
const hasSegmentB = (info: StackInfo | null) => !!info && (info.query.segment_b_start !== null || info.key.segment_b_start !== null);

/** Where the sink column starts: after the keys and the gap. */
const sinkLeft = ({ left, cell }: Pick<Layout, "left" | "cell">, info: StackInfo) => left + cell * info.key.tokens.length + SINK.gap;

/** The rows (or columns) [first, last] of bin `bin` of `bins` over `count` cells from `start`. */
function binCells(start: number, count: number, bins: number, bin: number): [number, number] {
  return [start + Math.ceil((bin * count) / bins), start + Math.ceil(((bin + 1) * count) / bins) - 1];
}

const binAt = (start: number, count: number, bins: number, index: number) => Math.floor(((index - start) * bins) / count);

export function matrixView(ctx: ViewContext): View {
  const { selection } = ctx;
  const tiles = new TileStore(selection.model);
  const chips = headChips(ctx, "focus");
  const status = el("p", { class: "aw-status", role: "status" });
  const box = el("div", { class: "aw-matrix" });
  const base = el("canvas", { "aria-hidden": "true" });
  const overlay = el("canvas", {
    class: "aw-overlay",
    tabindex: 0,
    "aria-label": "Attention matrix: hover to read a value, click a row to select its query token; wheel, drag and + − arrows 0 zoom and pan",
  });
  box.append(base, overlay);
  const element = el("section", { class: "aw-view aw-matrixview", "aria-label": "Matrix view" });
  const heading = readoutHeading("0", "1");
  const { readout, legendBar, legendHigh } = heading;
  const rangeField = labelledSelect("Full colour at");
  const curveField = labelledSelect("Curve");
  const poolingField = labelledSelect("Pooling");
  rangeField.select.append(...Object.entries(RANGE_NAMES).map(([value, text]) => el("option", { value }, text)));
  curveField.select.append(...Object.entries(CURVE_NAMES).map(([value, text]) => el("option", { value }, text)));
  poolingField.select.append(...TILE_POOLINGS.map((value) => el("option", { value }, value)));
  const resetButton = el("button", { type: "button", class: "aw-button", title: "Show the whole map (key 0)" }, "Whole map");
  const controls = el("div", { class: "aw-matrix-controls" });
  controls.append(rangeField.field, curveField.field, poolingField.field, resetButton);
  element.append(chips.element, controls, heading.element, status, box);
  const info0 = selection.info;
  let { scale, pooling } = chosen.get(selection.model) ?? { scale: defaultScale(info0?.key.tokens.length ?? 0), pooling: "max" as Pooling };
  const showChoices = () => {
    rangeField.select.value = scale.range;
    curveField.select.value = scale.curve;
    poolingField.select.value = pooling;
  };
  showChoices();

  const life = new Lifetime();
  let boxWidth = 0;
  let widthBefore = -1;
  let layout: Layout | null = null;
  let hover: [number, number] | null = null;
  let view: Viewport = WHOLE_MAP;
  /** The map size the view was set for: another size starts from the whole map. */
  let viewSize = "";
  /** Why a head's data could not come, per head key, for the data Python last sent. */
  let failures = new Map<string, string>();
  let failuresOf: unknown = null;
  /** Head keys asked for whole, so each is asked once while it loads. */
  const asked = new Set<string>();
  /** The region on screen the view waits for (a tile, or pooling here), the last one it drew, and the wait. */
  let wantedDetail = "";
  let lastDetail: { head: string; grid: Grid } | null = null;
  let pauseTimer: ReturnType<typeof setTimeout> | undefined;
  life.add(() => clearTimeout(pauseTimer));
  /** Grids pooled here, kept while only the hover or the view's position changes. */
  let pooled: { key: string; grid: Grid }[] = [];
  const images = new WeakMap<Grid, { key: string; canvas: HTMLCanvasElement | null }>();

  const hasSink = (info: StackInfo) => layerHasSinks(info, selection.layer);
  const focusedKey = (info: StackInfo) => headKey(info.stack.name, selection.layer, selection.head);
  const idleText = (info: StackInfo | null) =>
    "Hover a cell to read its value; click a row to select that query token." +
    (zoomable() ? " Wheel or pinch to zoom, drag to pan (keys: + − arrows 0)." : "") +
    (hasSegmentB(info) ? " The orange lines mark where sentence B starts." : "") +
    (info && hasSink(info) ? ` ${sinkColumnText(info)}` : "") +
    (info && isSigned(info) ? ` ${differenceText(info)}` : "");
  /** How to read a signed stack's colours. */
  const differenceText = (info: StackInfo) => {
    const [a, b] = info.stack.difference_of ?? ["A", "B"];
    return `Each cell is ${a} minus ${b}: red where ${a} attends more, blue where ${b} does, white where they agree.`;
  };
  /** What the column set apart stands for, where the layer has a sink. */
  const sinkColumnText = (info: StackInfo) => {
    const { label, stands_for } = sinkOf(info.stack);
    return `The column set apart on the right, ${label}, is the weight that goes to ${stands_for}, no token of the text.`;
  };

  function computeLayout(info: StackInfo, width = boxWidth): Layout {
    // At least room for the "key →" / "query ↓" captions in the corner.
    const left = Math.max(56, Math.ceil(longest(info.query.tokens)) + 10);
    const top = Math.max(36, Math.ceil(longest(info.key.tokens)) + 10);
    const nq = info.query.tokens.length;
    const nk = info.key.tokens.length;
    const room = width - left - 8;
    if (!hasSink(info)) {
      const cell = Math.max(0.05, Math.min(MAX_CELL, room / nk));
      return { left, top, cell, width, height: Math.ceil(top + cell * nq + 4), sink: 0 };
    }
    // The sink is one more column as wide as a key, or its minimum width when keys are thinner.
    let cell = Math.max(0.05, Math.min(MAX_CELL, (room - SINK.gap - SINK.minWidth) / nk));
    if (cell > SINK.minWidth) cell = Math.min(MAX_CELL, (room - SINK.gap) / (nk + 1));
    return { left, top, cell, width, height: Math.ceil(top + cell * nq + 4), sink: Math.max(cell, SINK.minWidth) };
  }

  function extentOf(info: StackInfo, { cell }: Layout, source: Source): Extent {
    const zoomableSource = source.kind !== "thumbnail" || source.why === null;
    return { nq: info.query.tokens.length, nk: info.key.tokens.length, maxZoom: zoomableSource ? maxZoomFor(cell) : 1 };
  }

  function zoomable(): boolean {
    const info = selection.info;
    return !!info && !!layout && extentOf(info, layout, sourceOf(info)).maxZoom > 1;
  }

  // -- where the values come from ------------------------------------------------------------
  function sourceOf(info: StackInfo): Source {
    const meta = selection.meta;
    if (meta !== failuresOf) {
      failures = new Map();
      asked.clear();
      failuresOf = meta;
    }
    const where = { stack: info.stack.name, layer: selection.layer, head: selection.head };
    const key = focusedKey(info);
    const bytes = ctx.chunks.peek(where);
    if (bytes) {
      const sinks = headSinkWeights(info, selection.layer, bytes);
      const head = { bytes, nq: info.query.tokens.length, nk: info.key.tokens.length, sinks, step: valueStep(meta, info), signed: isSigned(info) };
      return { kind: "bytes", head };
    }
    const why = failures.get(key);
    if (why !== undefined) return { kind: "thumbnail", grid: thumbnailOf(info), why };
    if (headLength(info) > LOCAL_HEAD_BYTES) return { kind: "tiles" };
    if (!asked.has(key)) {
      asked.add(key);
      life.whenAnswered(
        ctx.chunks.get(where),
        () => true,
        () => asked.delete(key) && draw(),
        (message) => fail(key, message),
      );
    }
    return { kind: "thumbnail", grid: thumbnailOf(info), why: null };
  }

  function fail(key: string, message: string): void {
    failures.set(key, message);
    asked.delete(key);
    draw();
  }

  function thumbnailOf(info: StackInfo): Grid | null {
    const meta = selection.meta;
    const binary = selection.model.get("_thumbs")?.[chunkKey(info.stack.name, selection.layer)];
    if (!meta || !binary) return null;
    const [rows, columns] = thumbnailShape(meta, info);
    try {
      const bytes = headThumbnail(meta, info, selection.layer, binary, selection.head);
      return remember(`thumb/${focusedKey(info)}`, bytes, () =>
        thumbnailGrid(bytes, rows, columns, info.query.tokens.length, info.key.tokens.length, valueStep(meta, info), isSigned(info)),
      );
    } catch {
      return null;
    }
  }

  /** A grid pooled here, kept under `key` for the same bytes, so the hover and panning pool nothing again. */
  const pooledFrom = new WeakMap<Grid, Uint8Array>();
  const pooledAs = (key: string, bytes: Uint8Array) => pooled.find((entry) => entry.key === key && pooledFrom.get(entry.grid) === bytes);
  const isPooled = (key: string, bytes: Uint8Array) => !!pooledAs(key, bytes);
  function remember(key: string, bytes: Uint8Array, make: () => Grid): Grid {
    const found = pooledAs(key, bytes);
    if (found) return found.grid;
    const grid = make();
    pooledFrom.set(grid, bytes);
    // The overview and the region on screen, and a thumbnail: nothing older is drawn again.
    pooled = [{ key, grid }, ...pooled.filter((entry) => entry.key !== key)].slice(0, 3);
    return grid;
  }

  /** Rows and columns a region gets: one per canvas pixel at most, one per cell at least. */
  function tileShape(region: Region, lay: Layout): [rows: number, columns: number] {
    const ratio = typeof devicePixelRatio === "number" && devicePixelRatio > 0 ? devicePixelRatio : 1;
    const cellPixels = lay.cell * view.zoom * ratio;
    const fit = (cells: number) => Math.max(1, Math.min(cells, MAX_TILE_SIDE, Math.ceil(cells * cellPixels)));
    return [fit(region.q1 - region.q0), fit(region.k1 - region.k0)];
  }

  /** The grids to draw: the whole head (which also gives the head's peaks), and the region on screen when zoomed;
   *  `final` is false while a stand-in is drawn (a thumbnail, or an older region stretched) until data arrives. */
  function gridsFor(info: StackInfo, lay: Layout, source: Source): { overview: Grid | null; detail: Grid | null; final: boolean } {
    const ext = extentOf(info, lay, source);
    const whole = { q0: 0, q1: ext.nq, k0: 0, k1: ext.nk };
    const ratio = typeof devicePixelRatio === "number" && devicePixelRatio > 0 ? devicePixelRatio : 1;
    const wholeShape: [number, number] = [
      Math.max(1, Math.min(ext.nq, MAX_TILE_SIDE, Math.ceil(lay.cell * ext.nq * ratio))),
      Math.max(1, Math.min(ext.nk, MAX_TILE_SIDE, Math.ceil(lay.cell * ext.nk * ratio))),
    ];
    const region = visibleRegion(view, ext);
    const zoomed = view.zoom > 1;
    if (source.kind === "thumbnail") return { overview: source.grid, detail: null, final: source.why !== null };
    const head = `${focusedKey(info)}/${pooling}`;
    if (source.kind === "bytes") {
      const { bytes } = source.head;
      const overview = remember(`${head}/whole/${wholeShape}`, bytes, () => poolHead(source.head, whole, ...wholeShape, pooling));
      if (!zoomed) return { overview, detail: null, final: true };
      const shape = tileShape(region, lay);
      const key = `${head}/${region.q0}-${region.q1}x${region.k0}-${region.k1}/${shape}`;
      const pool = () => remember(key, bytes, () => poolHead(source.head, region, ...shape, pooling));
      // A region of millions of cells (a 4096-token head barely zoomed) is pooled once the wheel pauses, as a tile
      // would be asked for: each step meanwhile stretches what was pooled last.
      const cells = (region.q1 - region.q0) * (region.k1 - region.k0);
      if (cells <= POOL_AT_ONCE_CELLS || isPooled(key, bytes)) return { overview, detail: latestDetail(head, pool()), final: true };
      afterPause(key, () => (pool(), draw()));
      return { overview, detail: latestDetail(head, null), final: false };
    }
    // The thumbnail stands in while the overview tile is on its way.
    const wholeTile = tile(info, whole, wholeShape, false);
    const overview = wholeTile ?? thumbnailOf(info);
    if (!zoomed) return { overview, detail: null, final: wholeTile !== null };
    const detail = tile(info, region, tileShape(region, lay), true);
    return { overview, detail: latestDetail(head, detail), final: wholeTile !== null && detail !== null };
  }

  /** The region's grid when it is here, else the last one of the same head and pooling, drawn where its cells are. */
  function latestDetail(head: string, detail: Grid | null): Grid | null {
    if (detail) lastDetail = { head, grid: detail };
    return detail ?? (lastDetail?.head === head ? lastDetail.grid : null);
  }

  /** `work` once the zoom or pan has paused for a moment on the region named `key` (each step restarts the wait). */
  function afterPause(key: string, work: () => void): void {
    if (wantedDetail === key) return;
    wantedDetail = key;
    clearTimeout(pauseTimer);
    pauseTimer = setTimeout(work, TILE_DELAY_MS);
  }

  /** A tile from Python if it is here; otherwise asked for (the region on screen after a pause) and null. */
  function tile(info: StackInfo, region: Region, [rows, columns]: [number, number], later: boolean): Grid | null {
    const where: TileWhere = { stack: info.stack.name, layer: selection.layer, head: selection.head, ...region, rows, columns, pooling };
    const found = tiles.peek(where);
    if (found) return found;
    const key = tileKey(where);
    const ask = () => {
      const head = focusedKey(info);
      life.whenAnswered(
        tiles.get(where),
        () => !later || wantedDetail === key, // a region the user has zoomed or panned away from is not drawn
        () => draw(),
        (message) => fail(head, message),
      );
    };
    if (later) afterPause(key, ask);
    else ask();
    return null;
  }

  // -- painting -------------------------------------------------------------------------------
  /** The value that gets full colour in each row of `grid`, as the scale says. */
  function fullColour(grid: Grid, overview: Grid | null): (row: number) => number {
    const reference = overview ?? grid;
    if (scale.range === "fixed") return () => 1;
    if (scale.range === "row") return (row) => grid.rowPeaks[row];
    const top = scale.range === "head" ? reference.peak : reference.peakPastFirst;
    return () => top;
  }

  /** The grid's picture on the scale: its columns, then its sink column if any. */
  function imageOf(grid: Grid, overview: Grid | null): HTMLCanvasElement | null {
    const full = fullColour(grid, overview);
    const signed = isSigned(selection.info);
    const key = `${ctx.dark()}/${signed}/${scale.range}/${scale.curve}/${scale.range === "row" ? "" : full(0)}`;
    const known = images.get(grid);
    if (known?.key === key) return known.canvas;
    const columns = grid.columns + (grid.sinks ? 1 : 0);
    const values = new Float32Array(grid.rows * columns);
    for (let r = 0; r < grid.rows; r++) {
      values.set(grid.values.subarray(r * grid.columns, (r + 1) * grid.columns), r * columns);
      if (grid.sinks) values[r * columns + grid.columns] = grid.sinks[r];
    }
    const paint = signed ? paintSigned : paintValues;
    const canvas = imageCanvas(columns, grid.rows, (data) => paint(data, values, grid.rows, columns, full, scale.curve, ctx.dark()));
    images.set(grid, { key, canvas });
    return canvas;
  }

  /** The part of `grid` on screen, where its cells are, and its sink column beside the keys. */
  function placeGrid(g: Painter, grid: Grid, overview: Grid | null, info: StackInfo, lay: Layout, ext: Extent): void {
    const picture = imageOf(grid, overview);
    if (!picture) return;
    const cell = lay.cell * view.zoom;
    const { rows, columns } = span(view, ext);
    const [a, b] = [Math.max(grid.q0, view.q0), Math.min(grid.q1, view.q0 + rows)];
    const [l, r] = [Math.max(grid.k0, view.k0), Math.min(grid.k1, view.k0 + columns)];
    if (b <= a || r <= l) return;
    const perRow = grid.rows / (grid.q1 - grid.q0);
    const perColumn = grid.columns / (grid.k1 - grid.k0);
    const [sy, sh] = [(a - grid.q0) * perRow, (b - a) * perRow];
    const [y, height] = [lay.top + (a - view.q0) * cell, (b - a) * cell];
    g.drawImage(picture, (l - grid.k0) * perColumn, sy, (r - l) * perColumn, sh, lay.left + (l - view.k0) * cell, y, (r - l) * cell, height);
    if (lay.sink && grid.sinks) g.drawImage(picture, grid.columns, sy, 1, sh, sinkLeft(lay, info), y, lay.sink, height);
  }

  /** Paints the map; false while part of it is a stand-in for data on its way. */
  function paintMap(g: Painter, info: StackInfo, lay: Layout, source: Source): boolean {
    const { overview, detail, final } = gridsFor(info, lay, source);
    const ext = extentOf(info, lay, source);
    // Pooled values are the canvas' pixels: crisp, as a blur would smear a one-cell diagonal.
    g.imageSmoothingEnabled = false;
    if (overview) placeGrid(g, overview, overview, info, lay, ext);
    if (detail) placeGrid(g, detail, overview, info, lay, ext);
    drawSegmentB(g, info, lay, ext);
    return final;
  }

  /** Where sentence B starts: a line across the rows, and one down the columns, where on screen. */
  function drawSegmentB(g: Painter, info: StackInfo, lay: Layout, ext: Extent): void {
    const queryB = info.query.segment_b_start;
    const keyB = info.key.segment_b_start;
    if (queryB === null && keyB === null) return;
    const cell = lay.cell * view.zoom;
    const width = lay.cell * ext.nk;
    const height = lay.cell * ext.nq;
    const y = queryB === null ? -1 : lay.top + (queryB - view.q0) * cell;
    const x = keyB === null ? -1 : lay.left + (keyB - view.k0) * cell;
    g.strokeStyle = ctx.dark() ? SEGMENT_B.dark : SEGMENT_B.light;
    g.lineWidth = 1.5;
    g.beginPath();
    if (y >= lay.top && y <= lay.top + height) {
      g.moveTo(lay.left - 4, y);
      g.lineTo(lay.left + width, y);
    }
    if (x >= lay.left && x <= lay.left + width) {
      g.moveTo(x, lay.top - 4);
      g.lineTo(x, lay.top + height);
    }
    g.stroke();
  }

  function draw(): void {
    const info = selection.info;
    // Not laid out (hidden, or not yet measured): nothing to draw, and no tile of a size the view will not have.
    if (!info || boxWidth <= 0) return;
    layout = computeLayout(info);
    const size = `${info.stack.name}/${info.query.tokens.length}x${info.key.tokens.length}`;
    if (size !== viewSize) [view, viewSize, lastDetail] = [WHOLE_MAP, size, null];
    const source = sourceOf(info);
    view = clampView(view, extentOf(info, layout, source));
    showStatus(info, source);
    box.style.height = `${layout.height}px`;
    const g = prepareCanvas(base, layout.width, layout.height);
    let final = source.kind === "thumbnail" && source.why !== null;
    if (g && (source.kind !== "thumbnail" || source.grid)) {
      g.clearRect(0, 0, layout.width, layout.height);
      final = paintMap(g, info, layout, source);
      drawLabels(g, info, layout);
    }
    // Busy while a stand-in shows: screen readers, and tests timing a head switch, wait for the real map.
    box.setAttribute("aria-busy", String(!final));
    drawOverlay();
    showLegend();
  }

  function showStatus(info: StackInfo, source: Source): void {
    if (source.kind !== "thumbnail") status.textContent = "";
    else if (source.why === null) status.textContent = `Loading head ${selection.head}…`;
    else {
      const meta = selection.meta;
      const [rows, columns] = meta ? thumbnailShape(meta, info) : [0, 0];
      const shown = source.grid ? ` Showing the head's ${rows} × ${columns} thumbnail; zooming needs the head's data.` : "";
      status.textContent = `Could not load head ${selection.head}: ${source.why}.${shown}`;
    }
  }

  /** The legend's high end and the readout's words for the scale the heatmap is drawn on. */
  function legendWords(): { high: string; scale: string } {
    const info = selection.info;
    const overview = info && layout ? gridsFor(info, layout, sourceOf(info)).overview : null;
    const full = overview ? (scale.range === "head" ? overview.peak : overview.peakPastFirst) : null;
    const high = fullColorLabel(scale.range, full);
    return { high, scale: `full colour at ${high}, ${curveDescription(scale.curve)}` };
  }

  /** The heatmap as it is on screen, with its labels, the selected row and a legend under it. */
  function snapshot(): Snapshot | null {
    const info = selection.info;
    if (!info) return null;
    const source = sourceOf(info);
    const shape = computeLayout(info, boxWidth > 0 ? boxWidth : IMAGE_WIDTH);
    if (!gridsFor(info, shape, source).overview) return null;
    const dark = ctx.dark();
    // As wide as the heatmap (and its legend), not the page: no empty strip beside it.
    const signed = isSigned(info);
    const legendText = signed
      ? `+${legendWords().high}  ${info.stack.difference_of?.join(" − ") ?? "A − B"}, ${curveDescription(scale.curve)}`
      : `${legendWords().high}  attention, ${curveDescription(scale.curve)}`;
    const legendWidth = LEGEND.bar + 4 + textWidth(legendText, LABEL_FONT);
    const keysWidth = shape.cell * info.key.tokens.length + (shape.sink ? SINK.gap + shape.sink : 0);
    const used = shape.left + Math.max(keysWidth, legendWidth) + 8;
    return {
      // Never narrower than the legend, which must be read whole.
      width: Math.ceil(Math.max(Math.min(shape.width, used), shape.left + legendWidth + 8)),
      height: shape.height + LEGEND.height,
      paint(g) {
        paintMap(g, info, shape, source);
        drawLabels(g, info, shape);
        drawPinned(g, info, shape);
        const y = shape.height + LEGEND.height / 2;
        // The legend in the heatmap's colours: value from 0 (left) to the full-colour value (right).
        // A signed scale's bar runs from −full (left) through 0 to +full.
        const steps = Float32Array.from({ length: LEGEND.bar }, (_, i) => (signed ? 2 * i / (LEGEND.bar - 1) - 1 : i / (LEGEND.bar - 1)));
        const paint = signed ? paintSigned : paintValues;
        const bar = imageCanvas(LEGEND.bar, 1, (data) => paint(data, steps, 1, LEGEND.bar, () => 1, scale.curve, dark));
        g.fillStyle = ink(dark).muted;
        g.font = LABEL_FONT;
        g.textBaseline = "middle";
        g.textAlign = "right";
        g.fillText(signed ? `−${legendWords().high}` : "0", shape.left - 4, y);
        if (bar) {
          g.imageSmoothingEnabled = false;
          g.drawImage(bar, shape.left, y - 4, LEGEND.bar, 8);
        }
        g.textAlign = "left";
        g.fillText(legendText, shape.left + LEGEND.bar + 4, y);
      },
    };
  }

  /** The labels of the rows and columns on screen, every k-th where cells are thinner than a line of text. */
  function drawLabels(g: Painter, info: StackInfo, lay: Layout): void {
    const { left, top, sink } = lay;
    const cell = lay.cell * view.zoom;
    const ext = { nq: info.query.tokens.length, nk: info.key.tokens.length, maxZoom: view.zoom };
    const region = visibleRegion(view, ext);
    const inside = (index: number, first: number, count: number) => index + 0.5 - first >= 0 && index + 0.5 - first <= count;
    const { rows, columns } = span(view, ext);
    const step = labelStep(cell);
    const pinned = selection.token;
    g.font = LABEL_FONT;
    g.fillStyle = ctx.dark() ? "#c9ced6" : "#3b4048";
    g.textBaseline = "middle";
    g.textAlign = "right";
    for (let q = region.q0; q < region.q1; q++) {
      if ((q % step !== 0 && q !== pinned) || !inside(q, view.q0, rows)) continue;
      const font = q === pinned ? `bold ${LABEL_FONT}` : LABEL_FONT;
      g.font = font;
      g.fillText(fitText(info.query.tokens[q], font, left - 8), left - 6, top + (q + 0.5 - view.q0) * cell);
    }
    g.font = LABEL_FONT;
    // Which way is which, in the corner the labels leave free.
    g.fillStyle = ink(ctx.dark()).muted;
    g.textAlign = "right";
    g.fillText("key →", left - 6, top - 24);
    g.fillText("query ↓", left - 6, top - 10);
    g.fillStyle = ctx.dark() ? "#c9ced6" : "#3b4048";
    g.save();
    g.translate(left, top - 6);
    g.rotate(-Math.PI / 2);
    g.textAlign = "left";
    for (let k = region.k0; k < region.k1; k++) {
      if (k % step === 0 && inside(k, view.k0, columns)) g.fillText(fitText(info.key.tokens[k], LABEL_FONT, top - 8), 0, (k + 0.5 - view.k0) * cell);
    }
    if (sink) g.fillText(sinkOf(info.stack).label, 0, sinkLeft(lay, info) - left + sink / 2);
    g.restore();
  }

  /** Selected row and hovered cell, on their own canvas so hovering never redraws the heatmap. */
  function drawOverlay(): void {
    const info = selection.info;
    if (!layout || !info) return;
    const g = prepareCanvas(overlay, layout.width, layout.height);
    if (!g) return;
    g.clearRect(0, 0, layout.width, layout.height);
    drawPinned(g, info, layout);
    if (hover) {
      const [q, k] = hover;
      const cell = layout.cell * view.zoom;
      const onSink = k === info.key.tokens.length;
      const x = onSink ? sinkLeft(layout, info) : layout.left + (k - view.k0) * cell;
      g.strokeStyle = ctx.dark() ? "#ffffff" : "#000000";
      g.lineWidth = 1;
      g.strokeRect(x - 0.5, layout.top + (q - view.q0) * cell - 0.5, Math.max(onSink ? layout.sink : cell, 1) + 1, Math.max(cell, 1) + 1);
    }
  }

  function drawPinned(g: Painter, info: StackInfo, lay: Layout): void {
    const pinned = selection.token;
    if (pinned === null) return;
    const cell = lay.cell * view.zoom;
    const y = lay.top + (pinned - view.q0) * cell;
    if (y < lay.top - cell || y > lay.top + lay.cell * info.query.tokens.length) return;
    g.strokeStyle = css(headColor(selection.head, info.stack.heads, ctx.dark()));
    g.lineWidth = 2;
    const right = lay.sink ? sinkLeft(lay, info) + lay.sink : lay.left + info.key.tokens.length * lay.cell;
    g.strokeRect(lay.left - 1, y - 1, right - lay.left + 2, Math.max(cell, 1) + 2);
  }

  // -- pointer and keys -----------------------------------------------------------------------
  /** The pointer as fractions of the plot's width and height (outside: below 0 or above 1), and the sink column. */
  function pointer(event: MouseEvent): { x: number; y: number; onSink: boolean } | null {
    const info = selection.info;
    if (!layout || !info) return null;
    const rect = overlay.getBoundingClientRect();
    const px = event.clientX - rect.left;
    const py = event.clientY - rect.top;
    const sinkAt = sinkLeft(layout, info);
    const onSink = layout.sink > 0 && px >= sinkAt && px < sinkAt + layout.sink;
    return { x: (px - layout.left) / (layout.cell * info.key.tokens.length), y: (py - layout.top) / (layout.cell * info.query.tokens.length), onSink };
  }

  function cellAt(event: MouseEvent): [number, number] | null {
    const info = selection.info;
    const at = pointer(event);
    if (!info || !at || !layout) return null;
    const ext = extentOf(info, layout, sourceOf(info));
    const [q, k] = viewCellAt(view, ext, at.x, at.y).map(Math.floor);
    const nk = info.key.tokens.length;
    // The sink column counts as key n_key; the gap before it as nothing.
    const key = at.onSink ? nk : at.x >= 0 && at.x < 1 ? k : -1;
    return at.y >= 0 && at.y < 1 && key >= 0 ? [q, key] : null;
  }

  /** The value under the pointer: the cell's own where the data has it, else the pooled block's, and what it covers. */
  function valueAt(info: StackInfo, q: number, k: number): { value: number; digits: string; block: string | null; full: number } | null {
    if (!layout) return null;
    const source = sourceOf(info);
    const nk = info.key.tokens.length;
    const { overview, detail } = gridsFor(info, layout, source);
    if (source.kind === "bytes") {
      const { step, signed } = source.head;
      const [bytes, sinks] = signed ? [asSigned(source.head.bytes), source.head.sinks && asSigned(source.head.sinks)] : [source.head.bytes, source.head.sinks];
      const byte = k === nk ? sinks![q] : bytes[q * nk + k];
      let rowTop = sinks ? Math.abs(sinks[q]) : 0;
      for (let i = q * nk; i < (q + 1) * nk; i++) rowTop = Math.max(rowTop, Math.abs(bytes[i]));
      return { value: byte * step, digits: (byte * step).toFixed(3), block: null, full: fullAt(overview, rowTop * step) };
    }
    const covers = (grid: Grid | null) => grid && q >= grid.q0 && q < grid.q1 && (k === nk ? !!grid.sinks : k >= grid.k0 && k < grid.k1);
    const grid = covers(detail) ? detail! : covers(overview) ? overview! : null;
    if (!grid) return null;
    const row = binAt(grid.q0, grid.q1 - grid.q0, grid.rows, q);
    const column = binAt(grid.k0, grid.k1 - grid.k0, grid.columns, k);
    const value = k === nk ? grid.sinks![row] : grid.values[row * grid.columns + column];
    const [qa, qb] = binCells(grid.q0, grid.q1 - grid.q0, grid.rows, row);
    const [ka, kb] = k === nk ? [k, k] : binCells(grid.k0, grid.k1 - grid.k0, grid.columns, column);
    const cells = (qb - qa + 1) * (kb - ka + 1);
    const keys = k === nk ? sinkOf(info.stack).label : ka === kb ? `key ${ka}` : `keys ${ka}–${kb}`;
    const block = cells > 1 ? `queries ${qa}–${qb} → ${keys}, ${pooling} of ${cells} cells` : null;
    const digits = grid.step ? value.toFixed(3) : exact(value);
    return { value, digits, block, full: fullAt(overview, grid.rowPeaks[row]) };
  }

  /** The full-colour value for a cell whose row peaks at `rowTop`. */
  function fullAt(overview: Grid | null, rowTop: number): number {
    if (scale.range === "fixed") return 1;
    if (scale.range === "row") return rowTop;
    return overview ? (scale.range === "head" ? overview.peak : overview.peakPastFirst) : 0;
  }

  const SHARE_OF: Record<ScaleRange, string> = { fixed: "", head: "the head's maximum", rest: "the head's maximum past key 0", row: "the row's maximum" };

  function showReadout(): void {
    const info = selection.info;
    const found = hover && info && valueAt(info, ...hover);
    if (!hover || !info || !found) {
      readout.textContent = idleText(info);
      readout.title = readout.textContent; // whole, where two lines cut it
      return;
    }
    readout.title = "";
    const [q, k] = hover;
    const { value, digits, block, full } = found;
    // On a relative scale, how far along it the value is, since its colour says only that.
    const share = scale.range !== "fixed" && full > 0 ? ` (${Math.round((100 * value) / full)}% of ${SHARE_OF[scale.range]})` : "";
    const of = isSigned(info) ? ` (${info.stack.difference_of?.join(" − ") ?? "A − B"})` : "";
    if (block) {
      readout.textContent = `${block}: ${digits}${share}${of}`;
      return;
    }
    const { label, stands_for } = sinkOf(info.stack);
    const to = k === info.key.tokens.length ? `${label} (${stands_for}, no token of the text)` : `key ${k} “${info.key.tokens[k]}”`;
    readout.textContent = `query ${q} “${info.query.tokens[q]}” → ${to}: ${digits}${share}${of}`;
  }

  function setView(next: Viewport): void {
    view = next;
    draw();
    showReadout();
  }

  function zoomBy(factor: number, x = 0.5, y = 0.5): Viewport | null {
    const info = selection.info;
    if (!info || !layout) return null;
    return zoomAround(view, extentOf(info, layout, sourceOf(info)), factor, x, y);
  }

  function panByShare(rows: number, columns: number): void {
    const info = selection.info;
    if (!info || !layout) return;
    const ext = extentOf(info, layout, sourceOf(info));
    const seen = span(view, ext);
    setView(panBy(view, ext, rows * seen.rows, columns * seen.columns));
  }

  let drag: { x: number; y: number; from: Viewport } | null = null;
  let dragged = false;
  const onDrag = (event: MouseEvent) => {
    const info = selection.info;
    if (!drag || !info || !layout) return;
    const dx = event.clientX - drag.x;
    const dy = event.clientY - drag.y;
    if (!dragged && Math.abs(dx) + Math.abs(dy) <= DRAG_PIXELS) return;
    dragged = true;
    const cell = layout.cell * drag.from.zoom;
    setView(panBy(drag.from, extentOf(info, layout, sourceOf(info)), -dy / cell, -dx / cell));
  };
  const endDrag = () => (drag = null);
  window.addEventListener("mousemove", onDrag);
  window.addEventListener("mouseup", endDrag);
  life.add(() => window.removeEventListener("mousemove", onDrag), () => window.removeEventListener("mouseup", endDrag));

  life.add(
    chips.dispose,
    listen(overlay, "mousemove", (event) => {
      const next = cellAt(event);
      if (next?.[0] === hover?.[0] && next?.[1] === hover?.[1]) return;
      hover = next;
      showReadout();
      drawOverlay();
    }),
    listen(overlay, "mouseleave", () => {
      hover = null;
      showReadout();
      drawOverlay();
    }),
    listen(overlay, "mousedown", (event) => {
      if (event.button !== 0) return;
      drag = { x: event.clientX, y: event.clientY, from: view };
      dragged = false;
    }),
    listen(overlay, "click", (event) => {
      if (dragged) return; // the end of a pan
      const at = cellAt(event);
      if (at) selection.setToken(at[0]);
    }),
    listen(overlay, "wheel", (event) => {
      const at = pointer(event);
      if (!at) return;
      const perPixel = event.ctrlKey ? WHEEL_ZOOM.pinch : WHEEL_ZOOM.wheel;
      const pixels = event.deltaY * (event.deltaMode === 1 ? WHEEL_ZOOM.linePixels : 1);
      const clamp = (v: number) => Math.min(1, Math.max(0, v));
      const next = zoomBy(Math.exp(-pixels * perPixel), clamp(at.x), clamp(at.y));
      // Zoomed in, the wheel belongs to the map; on the whole map, scrolling out still scrolls the page.
      if (!next || (next.zoom === view.zoom && view.zoom === 1)) return;
      event.preventDefault();
      setView(next);
    }),
    listenKeys(overlay, () => {
      if (!zoomable()) return null;
      const zoomIn = () => setView(zoomBy(KEY_STEP.zoom) ?? view);
      const zoomOut = () => setView(zoomBy(1 / KEY_STEP.zoom) ?? view);
      return {
        "+": zoomIn,
        "=": zoomIn,
        "-": zoomOut,
        "0": () => setView(WHOLE_MAP),
        ArrowUp: () => panByShare(-KEY_STEP.pan, 0),
        ArrowDown: () => panByShare(KEY_STEP.pan, 0),
        ArrowLeft: () => panByShare(0, -KEY_STEP.pan),
        ArrowRight: () => panByShare(0, KEY_STEP.pan),
      };
    }),
    listen(resetButton, "click", () => setView(WHOLE_MAP)),
    listen(rangeField.select, "change", () => choose({ ...scale, range: rangeField.select.value as ScaleRange }, pooling)),
    listen(curveField.select, "change", () => choose({ ...scale, curve: curveField.select.value as ScaleCurve }, pooling)),
    listen(poolingField.select, "change", () => choose(scale, poolingField.select.value as Pooling)),
  );

  function showLegend(): void {
    const words = legendWords();
    const signed = isSigned(selection.info);
    legendBar.style.background = signed ? divergingGradient(scale.curve, ctx.dark()) : scaleGradient(scale, ctx.dark());
    // A signed scale runs from minus the full-colour magnitude to plus it.
    const magnitude = words.high.startsWith("row") ? words.high : words.high.split(" ")[0];
    if (legendBar.previousElementSibling) legendBar.previousElementSibling.textContent = signed ? `−${magnitude}` : "0";
    legendHigh.textContent = signed ? `+${words.high}` : words.high;
    const fixed = [...rangeField.select.options].find((option) => option.value === "fixed");
    if (fixed) fixed.text = signed ? "−1 to 1" : RANGE_NAMES.fixed;
    heading.element.title = `Colour: ${words.scale}`;
  }

  function choose(nextScale: ColorScale, nextPooling: Pooling): void {
    [scale, pooling] = [nextScale, nextPooling];
    chosen.set(selection.model, { scale, pooling });
    draw();
    showReadout();
  }

  function update(trait?: WatchedTrait): void {
    // The selected token shows as a row outline and a kept label, so it needs a redraw too.
    if (trait !== "token") chips.update();
    draw();
    showReadout();
  }

  update();
  // Sized last: the first measurement draws, now that the view is built.
  life.add(
    observeSize(box, (width) => {
      if (width === boxWidth) return; // our own height change; only width drives the layout
      // Our height can toggle the page's scrollbar, which changes our width, which changes our
      // height... Going back to the width before last is that loop: stay put instead.
      if (width === widthBefore && Math.abs(width - boxWidth) < 40) return;
      widthBefore = boxWidth;
      boxWidth = width;
      draw();
      showReadout(); // whether the map zooms depends on its width
    }),
  );
  return viewOf(element, life, update, snapshot);
}
