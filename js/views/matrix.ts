// Matrix view: the focused head as a heatmap, query rows × key columns. The n × n values
// become one ImageData scaled onto the canvas, so thousands of tokens stay one drawImage.
// A layer with a sink, one more key that is no token of the text (GPT-OSS's learned sinks,
// CPM-Ant's prompt positions, global tokens), gets one more column, set apart and named as meta
// names it: the weight each query gives it. It is a key of the same softmax, so it shares the
// heatmap's colour scale.

import { byteToProbability, headKey, headSinkWeights, layerHasSinks, sinkOf, type StackInfo, type WatchedTrait, type WidgetModel } from "../contract";
import { fitText, imageCanvas, observeSize, prepareCanvas, textWidth } from "../draw/canvas";
import { css, headColor } from "../draw/colors";
import { el, listen } from "../draw/dom";
import type { Painter } from "../draw/painter";
import {
  CURVE_NAMES,
  DEFAULT_SCALE,
  RANGE_NAMES,
  curveDescription,
  fullColorLabel,
  paintScaled,
  scaleGradient,
  type ColorScale,
  type ScaleCurve,
  type ScaleRange,
} from "../draw/scale";
import { UI_FONT as LABEL_FONT, ink } from "../draw/text";
import { headChips } from "./chips";
import { labelledSelect, readoutHeading } from "./parts";
import { Lifetime, selectedHead, viewOf, type Snapshot, type View, type ViewContext } from "./view";

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

/** The colour scale chosen in each widget, kept while the page is open so switching views keeps it. */
const chosenScales = new WeakMap<WidgetModel, ColorScale>();

interface Layout {
  left: number;
  top: number;
  cell: number;
  width: number;
  height: number;
  /** Width of the sink column, 0 when the layer has none. */
  sink: number;
}

/** Every k-th index, so labels never overlap: k = 1 when cells are tall enough for text. */
export function labelStep(cell: number): number {
  return Math.max(1, Math.ceil(LABEL_SPACING / cell));
}

/** Whether either axis has a sentence B to mark. */
const hasSegmentB = (info: StackInfo | null) => !!info && (info.query.segment_b_start !== null || info.key.segment_b_start !== null);

/** Where the sink column starts: after the keys and the gap. */
const sinkLeft = ({ left, cell }: Pick<Layout, "left" | "cell">, info: StackInfo) => left + cell * info.key.tokens.length + SINK.gap;

export function matrixView(ctx: ViewContext): View {
  const { selection } = ctx;
  const chips = headChips(ctx, "focus");
  const status = el("p", { class: "aw-status", role: "status" });
  const box = el("div", { class: "aw-matrix" });
  const base = el("canvas", { "aria-hidden": "true" });
  const overlay = el("canvas", { class: "aw-overlay", "aria-label": "Attention matrix: hover to read a value, click a row to select its query token" });
  box.append(base, overlay);
  const element = el("section", { class: "aw-view aw-matrixview", "aria-label": "Matrix view" });
  const heading = readoutHeading("0", "1");
  const { readout, legendBar, legendHigh } = heading;
  const rangeField = labelledSelect("Full colour at");
  const curveField = labelledSelect("Curve");
  rangeField.select.append(...Object.entries(RANGE_NAMES).map(([value, text]) => el("option", { value }, text)));
  curveField.select.append(...Object.entries(CURVE_NAMES).map(([value, text]) => el("option", { value }, text)));
  const controls = el("div", { class: "aw-matrix-controls" });
  controls.append(rangeField.field, curveField.field);
  element.append(chips.element, controls, heading.element, status, box);
  let scale = chosenScales.get(selection.model) ?? DEFAULT_SCALE;
  rangeField.select.value = scale.range;
  curveField.select.value = scale.curve;

  const life = new Lifetime();
  let boxWidth = 0;
  let widthBefore = -1;
  let layout: Layout | null = null;
  let hover: [number, number] | null = null;
  // The image of the drawn head, kept while only the hover or selection changes: its values,
  // n_query rows of `columns` bytes (the keys, then the sink if any), and the byte that got full
  // colour (null: each row's largest).
  let image: { bytes: Uint8Array; key: string; canvas: HTMLCanvasElement | null; headTop: number | null; values: Uint8Array; columns: number } | null =
    null;

  const hasSink = (info: StackInfo) => layerHasSinks(info, selection.layer);
  const idleText = (info: StackInfo | null) =>
    "Hover a cell to read its value; click a row to select that query token." +
    (hasSegmentB(info) ? " The orange lines mark where sentence B starts." : "") +
    (info && hasSink(info) ? ` ${sinkColumnText(info)}` : "");
  /** What the column set apart stands for, where the layer has a sink. */
  const sinkColumnText = (info: StackInfo) => {
    const { label, stands_for } = sinkOf(info.stack);
    return `The column set apart on the right, ${label}, is the weight that goes to ${stands_for}, no token of the text.`;
  };

  function computeLayout(info: StackInfo, width = boxWidth): Layout {
    const longest = (tokens: string[]) => Math.min(MAX_GUTTER, Math.max(0, ...tokens.map((t) => textWidth(t, LABEL_FONT))));
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

  function heatmap(info: StackInfo, bytes: Uint8Array): NonNullable<typeof image> {
    const nq = info.query.tokens.length;
    const nk = info.key.tokens.length;
    const head = selection.head;
    const dark = ctx.dark();
    const key = `${headKey(info.stack.name, selection.layer, head)}/${dark}/${scale.range}/${scale.curve}`;
    if (image?.key === key && image.bytes === bytes) return image;
    const sinks = headSinkWeights(info, selection.layer, bytes);
    const columns = nk + (sinks ? 1 : 0);
    let values = bytes.subarray(0, nq * nk);
    if (sinks) {
      values = new Uint8Array(nq * columns);
      for (let q = 0; q < nq; q++) {
        values.set(bytes.subarray(q * nk, (q + 1) * nk), q * columns);
        values[q * columns + nk] = sinks[q];
      }
    }
    let headTop: number | null = null;
    const canvas = imageCanvas(columns, nq, (data) => (headTop = paintScaled(data, values, 0, nq, columns, scale, dark)));
    image = { bytes, key, canvas, headTop, values, columns };
    return image;
  }

  function draw(): void {
    const info = selection.info;
    if (!info) return;
    const bytes = selectedHead(ctx, life, status, draw, selection.head);
    layout = computeLayout(info);
    box.style.height = `${layout.height}px`;
    const g = prepareCanvas(base, layout.width, layout.height);
    if (g && bytes) {
      g.clearRect(0, 0, layout.width, layout.height);
      drawHeatmap(g, info, bytes, layout);
      drawLabels(g, info, layout);
    }
    drawOverlay();
  }

  function drawHeatmap(g: Painter, info: StackInfo, bytes: Uint8Array, { left, top, cell, sink }: Layout): void {
    const picture = heatmap(info, bytes).canvas;
    if (!picture) return;
    // Crisp cells when enlarging; averaging when thousands of tokens shrink below a pixel.
    g.imageSmoothingEnabled = cell < 1;
    const nk = info.key.tokens.length;
    const nq = info.query.tokens.length;
    const width = cell * nk;
    const height = cell * nq;
    g.drawImage(picture, 0, 0, nk, nq, left, top, width, height);
    if (sink) g.drawImage(picture, nk, 0, 1, nq, left + width + SINK.gap, top, sink, height);
    // Where sentence B starts: a line across the rows, and one down the columns.
    const queryB = info.query.segment_b_start;
    const keyB = info.key.segment_b_start;
    if (queryB === null && keyB === null) return;
    g.strokeStyle = ctx.dark() ? SEGMENT_B.dark : SEGMENT_B.light;
    g.lineWidth = 1.5;
    g.beginPath();
    if (queryB !== null) {
      g.moveTo(left - 4, top + queryB * cell);
      g.lineTo(left + width, top + queryB * cell);
    }
    if (keyB !== null) {
      g.moveTo(left + keyB * cell, top - 4);
      g.lineTo(left + keyB * cell, top + height);
    }
    g.stroke();
  }

  /** The legend's high end and the readout's words for the scale the heatmap was drawn on. */
  function legendWords(headTop: number | null): { high: string; scale: string } {
    const meta = selection.meta;
    const high = fullColorLabel(scale.range, headTop, (byte) => (meta ? byteToProbability(byte, meta) : byte / 255));
    return { high, scale: `full colour at ${high}, ${curveDescription(scale.curve)}` };
  }

  /** The heatmap with its labels, the selected row and a legend under it. */
  function snapshot(): Snapshot | null {
    const info = selection.info;
    const bytes = info && ctx.chunks.peek({ stack: info.stack.name, layer: selection.layer, head: selection.head });
    if (!info || !bytes) return null;
    const shape = computeLayout(info, boxWidth > 0 ? boxWidth : IMAGE_WIDTH);
    const dark = ctx.dark();
    // As wide as the heatmap (and its legend), not the page: no empty strip beside it.
    const legendText = `${legendWords(heatmap(info, bytes).headTop).high}  attention, ${curveDescription(scale.curve)}`;
    const legendWidth = LEGEND.bar + 4 + textWidth(legendText, LABEL_FONT);
    const keysWidth = shape.cell * info.key.tokens.length + (shape.sink ? SINK.gap + shape.sink : 0);
    const used = shape.left + Math.max(keysWidth, legendWidth) + 8;
    return {
      // Never narrower than the legend, which must be read whole.
      width: Math.ceil(Math.max(Math.min(shape.width, used), shape.left + legendWidth + 8)),
      height: shape.height + LEGEND.height,
      paint(g) {
        drawHeatmap(g, info, bytes, shape);
        drawLabels(g, info, shape);
        drawPinned(g, info, shape);
        const y = shape.height + LEGEND.height / 2;
        // The legend in the heatmap's colours: value from 0 (left) to the full-colour value (right).
        const steps = Uint8Array.from({ length: LEGEND.bar }, (_, i) => Math.round((i / (LEGEND.bar - 1)) * 255));
        const bar = imageCanvas(LEGEND.bar, 1, (data) => paintScaled(data, steps, 0, 1, LEGEND.bar, { ...scale, range: "fixed" }, dark));
        g.fillStyle = ink(dark).muted;
        g.font = LABEL_FONT;
        g.textBaseline = "middle";
        g.textAlign = "right";
        g.fillText("0", shape.left - 4, y);
        if (bar) {
          g.imageSmoothingEnabled = false;
          g.drawImage(bar, shape.left, y - 4, LEGEND.bar, 8);
        }
        g.textAlign = "left";
        g.fillText(legendText, shape.left + LEGEND.bar + 4, y);
      },
    };
  }

  function drawLabels(g: Painter, info: StackInfo, { left, top, cell, sink }: Layout): void {
    const step = labelStep(cell);
    const pinned = selection.token;
    g.font = LABEL_FONT;
    g.fillStyle = ctx.dark() ? "#c9ced6" : "#3b4048";
    g.textBaseline = "middle";
    g.textAlign = "right";
    info.query.tokens.forEach((token, q) => {
      if (q % step !== 0 && q !== pinned) return;
      const font = q === pinned ? `bold ${LABEL_FONT}` : LABEL_FONT;
      g.font = font;
      g.fillText(fitText(token, font, left - 8), left - 6, top + (q + 0.5) * cell);
    });
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
    info.key.tokens.forEach((token, k) => {
      if (k % step === 0) g.fillText(fitText(token, LABEL_FONT, top - 8), 0, (k + 0.5) * cell);
    });
    if (sink) g.fillText(sinkOf(info.stack).label, 0, sinkLeft({ left, cell }, info) - left + sink / 2);
    g.restore();
  }

  /** Selected row and hovered cell, on their own canvas so hovering never redraws the heatmap. */
  function drawOverlay(): void {
    const info = selection.info;
    if (!layout || !info) return;
    const g = prepareCanvas(overlay, layout.width, layout.height);
    if (!g) return;
    const { left, top, cell } = layout;
    g.clearRect(0, 0, layout.width, layout.height);
    drawPinned(g, info, layout);
    if (hover) {
      const [q, k] = hover;
      const onSink = k === info.key.tokens.length;
      const x = onSink ? sinkLeft(layout, info) : left + k * cell;
      g.strokeStyle = ctx.dark() ? "#ffffff" : "#000000";
      g.lineWidth = 1;
      g.strokeRect(x - 0.5, top + q * cell - 0.5, Math.max(onSink ? layout.sink : cell, 1) + 1, Math.max(cell, 1) + 1);
    }
  }

  function drawPinned(g: Painter, info: StackInfo, { left, top, cell, sink }: Layout): void {
    const pinned = selection.token;
    if (pinned === null) return;
    g.strokeStyle = css(headColor(selection.head, info.stack.heads, ctx.dark()));
    g.lineWidth = 2;
    const right = sink ? sinkLeft({ left, cell }, info) + sink : left + info.key.tokens.length * cell;
    g.strokeRect(left - 1, top + pinned * cell - 1, right - left + 2, Math.max(cell, 1) + 2);
  }

  function cellAt(event: MouseEvent): [number, number] | null {
    const info = selection.info;
    if (!layout || !info) return null;
    const rect = overlay.getBoundingClientRect();
    const x = event.clientX - rect.left;
    const q = Math.floor((event.clientY - rect.top - layout.top) / layout.cell);
    const nk = info.key.tokens.length;
    const sinkAt = sinkLeft(layout, info);
    // The sink column counts as key n_key; the gap before it as nothing.
    const k = layout.sink && x >= sinkAt && x < sinkAt + layout.sink ? nk : Math.floor((x - layout.left) / layout.cell);
    const inside = q >= 0 && k >= 0 && q < info.query.tokens.length && (k < nk || (k === nk && layout.sink > 0));
    return inside ? [q, k] : null;
  }

  function showReadout(): void {
    const info = selection.info;
    const meta = selection.meta;
    const bytes = info && ctx.chunks.peek({ stack: info.stack.name, layer: selection.layer, head: selection.head });
    if (!hover || !info || !meta || !bytes) {
      readout.textContent = idleText(info);
      return;
    }
    const [q, k] = hover;
    const { values, columns, headTop } = heatmap(info, bytes);
    const row = values.subarray(q * columns, (q + 1) * columns);
    const value = byteToProbability(row[k], meta);
    // On a relative scale, how far along it the value is, since its colour says only that.
    const top = scale.range === "row" ? Math.max(...row) : scale.range === "head" ? headTop : null;
    const share = top ? ` (${Math.round((100 * row[k]) / top)}% of the ${scale.range}'s maximum)` : "";
    const { label, stands_for } = sinkOf(info.stack);
    const to = k === info.key.tokens.length ? `${label} (${stands_for}, no token of the text)` : `key ${k} “${info.key.tokens[k]}”`;
    readout.textContent = `query ${q} “${info.query.tokens[q]}” → ${to}: ${value.toFixed(3)}${share}`;
  }

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
    listen(overlay, "click", (event) => {
      const at = cellAt(event);
      if (at) selection.setToken(at[0]);
    }),
    listen(rangeField.select, "change", () => chooseScale({ ...scale, range: rangeField.select.value as ScaleRange })),
    listen(curveField.select, "change", () => chooseScale({ ...scale, curve: curveField.select.value as ScaleCurve })),
  );

  function showLegend(): void {
    const info = selection.info;
    const bytes = info && ctx.chunks.peek({ stack: info.stack.name, layer: selection.layer, head: selection.head });
    const words = legendWords(info && bytes ? heatmap(info, bytes).headTop : null);
    legendBar.style.background = scaleGradient(scale, ctx.dark());
    legendHigh.textContent = words.high;
    heading.element.title = `Colour: ${words.scale}`;
  }

  function chooseScale(next: ColorScale): void {
    scale = next;
    chosenScales.set(selection.model, scale);
    draw();
    showLegend();
  }

  function update(trait?: WatchedTrait): void {
    // The selected token shows as a row outline and a kept label, so it needs a redraw too.
    if (trait !== "token") chips.update();
    showReadout();
    draw();
    showLegend();
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
    }),
  );
  return viewOf(element, life, update, snapshot);
}
