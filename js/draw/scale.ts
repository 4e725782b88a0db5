// The matrix view's colour scale: which value gets full colour (1, the head's largest value, the head's largest past
// key 0, or each row's largest) and the curve from value to colour. At hundreds of tokens a few "sink" cells hold
// most of the weight (often key 0, the first token, in every row), and on a fixed 0–1 scale everything else is near
// white; at thousands of tokens most weights are near 1/n, which only a log curve tells apart.

import { rampGradient, rampTable } from "./colors";

export type ScaleRange = "fixed" | "head" | "rest" | "row";
export type ScaleCurve = "sqrt" | "linear" | "log";

export interface ColorScale {
  range: ScaleRange;
  curve: ScaleCurve;
}

/** What the widget always showed for short inputs: 0 to 1 through a square root (a gamma of ½). */
export const DEFAULT_SCALE: ColorScale = { range: "fixed", curve: "sqrt" };
/** From this many keys on, the default puts full colour at the head's largest value past key 0, on a log curve:
 *  the first token's column no longer washes out the rest, and weights near 1/n still show. */
export const LONG_INPUT_KEYS = 256;
export const LONG_INPUT_SCALE: ColorScale = { range: "rest", curve: "log" };

/** The scale a matrix of `keys` key columns opens on. */
export const defaultScale = (keys: number): ColorScale => (keys >= LONG_INPUT_KEYS ? LONG_INPUT_SCALE : DEFAULT_SCALE);

/** Each choice as the view's selects offer it. */
export const RANGE_NAMES: Readonly<Record<ScaleRange, string>> = {
  fixed: "0 to 1",
  head: "head maximum",
  rest: "head maximum past key 0",
  row: "row maximum",
};
export const CURVE_NAMES: Readonly<Record<ScaleCurve, string>> = { sqrt: "square root", linear: "linear", log: "log" };

/** Decades the log curve spans: a value below a thousandth of the full-colour value gets no colour. */
export const LOG_DECADES = 3;

/** Position along the colour ramp (0: none, 1: full colour) of a value `fraction` of the full-colour value. */
export function curvePosition(curve: ScaleCurve, fraction: number): number {
  if (!(fraction > 0)) return 0;
  const t = Math.min(1, fraction);
  if (curve === "linear") return t;
  if (curve === "sqrt") return Math.sqrt(t);
  return Math.max(0, 1 + Math.log10(t) / LOG_DECADES);
}

/** Steps along the ramp a colour is picked from: finer than any screen tells apart. */
const RAMP_STEPS = 255;

/** Each curve's ramp step of a fraction t of the full colour, written for a loop over every cell. */
const STEP_OF: Readonly<Record<ScaleCurve, (t: number) => number>> = {
  linear: (t) => (t > 0 ? (Math.min(1, t) * RAMP_STEPS + 0.5) | 0 : 0),
  sqrt: (t) => (t > 0 ? (Math.sqrt(Math.min(1, t)) * RAMP_STEPS + 0.5) | 0 : 0),
  log: (t) => (t > 0 ? (Math.max(0, 1 + Math.log10(Math.min(1, t)) / LOG_DECADES) * RAMP_STEPS + 0.5) | 0 : 0),
};

/**
 * The RGBA pixels of `rows` × `columns` values into `data`, each the table entry `entryOf(value, 1 / full(row))` (a
 * row with nothing gets 0 as the scale): the one loop of every heatmap, whatever its colour map.
 */
export function paintRows(
  data: Uint8ClampedArray,
  values: ArrayLike<number>,
  rows: number,
  columns: number,
  full: (row: number) => number,
  table: Uint32Array,
  entryOf: (value: number, scaleBy: number) => number,
): void {
  const pixels = new Uint32Array(data.buffer, data.byteOffset, rows * columns);
  for (let r = 0; r < rows; r++) {
    const top = full(r);
    const scaleBy = top > 0 ? 1 / top : 0;
    for (let i = r * columns, end = i + columns; i < end; i++) pixels[i] = table[entryOf(values[i], scaleBy)];
  }
}

/** Paints `rows` × `columns` values into RGBA `data` on `curve`, full colour at `full(row)` in each row. */
export type Paint = (
  data: Uint8ClampedArray,
  values: ArrayLike<number>,
  rows: number,
  columns: number,
  full: (row: number) => number,
  curve: ScaleCurve,
  dark: boolean,
) => void;

/** Probabilities: value v of row r gets the ramp's colour of v / full(r) on the curve (a row with nothing: paper). */
export const paintValues: Paint = (data, values, rows, columns, full, curve, dark) => {
  // Whole pixels at once: the table and the image share one byte order, whatever the machine's.
  const table = new Uint32Array(rampTable(dark, (step) => step / RAMP_STEPS).buffer);
  const stepOf = STEP_OF[curve];
  paintRows(data, values, rows, columns, full, table, (value, scaleBy) => stepOf(value * scaleBy));
};

/** The legend's bar: value from 0 to the full-colour value, left to right, in the colours the heatmap uses. */
export const scaleGradient = (scale: ColorScale, dark: boolean) => rampGradient(dark, (x) => curvePosition(scale.curve, x));

/** What the legend's high end stands for: "1", "0.431 (head max)", "0.052 (max past key 0)", "row max". */
export function fullColorLabel(range: ScaleRange, full: number | null): string {
  if (range === "fixed") return "1";
  if (range === "row" || full === null) return "row max";
  return `${full.toFixed(3)} (${range === "head" ? "head max" : "max past key 0"})`;
}

/** "square-root scale", "log scale (3 decades)". */
export function curveDescription(curve: ScaleCurve): string {
  return curve === "log" ? `log scale (${LOG_DECADES} decades)` : `${CURVE_NAMES[curve]} scale`;
}
