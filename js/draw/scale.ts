// The matrix view's colour scale: which value gets full colour (1, the head's largest value, or
// each row's largest) and the curve from value to colour. At hundreds of tokens a few "sink"
// cells hold most of the weight, and on a fixed 0–1 scale everything else is near white.

import { rampGradient, rampTable } from "./colors";

export type ScaleRange = "fixed" | "head" | "row";
export type ScaleCurve = "sqrt" | "linear" | "log";

export interface ColorScale {
  range: ScaleRange;
  curve: ScaleCurve;
}

/** What the widget always showed: 0 to 1 through a square root. */
export const DEFAULT_SCALE: ColorScale = { range: "fixed", curve: "sqrt" };

/** Each choice as the view's selects offer it. */
export const RANGE_NAMES: Readonly<Record<ScaleRange, string>> = { fixed: "0 to 1", head: "head maximum", row: "row maximum" };
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

/** The largest byte of `count` bytes from `start`. */
function largest(bytes: Uint8Array, start: number, count: number): number {
  let top = 0;
  for (let i = start; i < start + count; i++) if (bytes[i] > top) top = bytes[i];
  return top;
}

/**
 * The RGBA pixels of one head's nq × nk attention bytes (from `start`) on `scale`, into `data`.
 * Returns the byte that got full colour: 255, the head's largest, or null when each row has its own.
 */
export function paintScaled(
  data: Uint8ClampedArray,
  bytes: Uint8Array,
  start: number,
  nq: number,
  nk: number,
  scale: ColorScale,
  dark: boolean,
): number | null {
  // One byte → colour table per full-colour byte: at most 256 of them, made as rows need them.
  const tables = new Map<number, Uint8ClampedArray>();
  const tableFor = (top: number) => {
    const full = Math.max(1, top); // an all-zero row stays paper
    let table = tables.get(full);
    if (!table) tables.set(full, (table = rampTable(dark, (byte) => curvePosition(scale.curve, byte / full))));
    return table;
  };
  const headTop = scale.range === "fixed" ? 255 : scale.range === "head" ? largest(bytes, start, nq * nk) : null;
  for (let q = 0; q < nq; q++) {
    const row = start + q * nk;
    const table = tableFor(headTop ?? largest(bytes, row, nk));
    for (let k = 0; k < nk; k++) {
      const from = bytes[row + k] * 4;
      const to = (q * nk + k) * 4;
      data[to] = table[from];
      data[to + 1] = table[from + 1];
      data[to + 2] = table[from + 2];
      data[to + 3] = 255;
    }
  }
  return headTop;
}

/** The legend's bar: value from 0 to the full-colour value, left to right, in the colours the heatmap uses. */
export const scaleGradient = (scale: ColorScale, dark: boolean) => rampGradient(dark, (x) => curvePosition(scale.curve, x));

/** What the legend's high end stands for: "1", "0.431 (head max)" (from the head's largest byte), "row max". */
export function fullColorLabel(range: ScaleRange, headTop: number | null, toProbability: (byte: number) => number): string {
  if (range === "fixed") return "1";
  if (range === "row" || headTop === null) return "row max";
  return `${toProbability(Math.max(1, headTop)).toFixed(3)} (head max)`;
}

/** "square-root scale", "log scale (3 decades)". */
export function curveDescription(curve: ScaleCurve): string {
  return curve === "log" ? `log scale (${LOG_DECADES} decades)` : `${CURVE_NAMES[curve]} scale`;
}
