// The diverging colour map of signed stacks (A − B of two compared runs, docs/data-contract.md "Compared runs"):
// blue below 0, the page's paper at 0, red above, symmetric around 0, so a difference of −0.2 is exactly as strong
// a blue as +0.2 is a red. Both ends stay well apart from the paper in the light and the dark theme.

import { css, paper, type Rgb } from "./colors";
import { curvePosition, paintRows, type Paint, type ScaleCurve } from "./scale";

/** Ramp stops from 0 (paper) out to full colour, per sign and theme. */
const STOPS: Readonly<Record<"light" | "dark", { negative: Rgb[]; positive: Rgb[] }>> = {
  light: { negative: [[146, 197, 222], [33, 102, 172], [5, 48, 97]], positive: [[244, 165, 130], [178, 24, 43], [103, 0, 31]] },
  dark: { negative: [[38, 78, 130], [70, 140, 215], [170, 215, 255]], positive: [[130, 45, 45], [215, 85, 70], [255, 190, 160]] },
};

/** Colour steps on each side of 0: as fine as the ramp of attention. */
const SIDE_STEPS = 255;

/** The colour of `position` from −1 (full blue) through 0 (paper) to +1 (full red). */
export function divergingColor(dark: boolean, position: number): Rgb {
  const t = Math.min(1, Math.abs(position));
  if (!(t > 0)) return paper(dark);
  const theme = STOPS[dark ? "dark" : "light"];
  const stops = [paper(dark), ...(position < 0 ? theme.negative : theme.positive)];
  const at = t * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(at));
  const f = at - i;
  return [0, 1, 2].map((c) => Math.round(stops[i][c] + (stops[i + 1][c] - stops[i][c]) * f)) as unknown as Rgb;
}

/** 2 × 255 + 1 RGBA entries: entry 255 + s is the colour at s / 255, s from −255 to 255. */
const tables = new Map<boolean, Uint8ClampedArray>();
function divergingTable(dark: boolean): Uint8ClampedArray {
  let table = tables.get(dark);
  if (table) return table;
  table = new Uint8ClampedArray((2 * SIDE_STEPS + 1) * 4);
  for (let s = -SIDE_STEPS; s <= SIDE_STEPS; s++) {
    table.set(divergingColor(dark, s / SIDE_STEPS), (s + SIDE_STEPS) * 4);
    table[(s + SIDE_STEPS) * 4 + 3] = 255;
  }
  tables.set(dark, table);
  return table;
}

/** The ramp step, −255 to 255, of a signed value whose row gets full colour at magnitude `1 / scaleBy`. */
export function signedStep(value: number, scaleBy: number, curve: ScaleCurve): number {
  const fraction = Math.abs(value) * scaleBy;
  if (!(fraction > 0)) return 0;
  const step = Math.round(curvePosition(curve, fraction) * SIDE_STEPS);
  return value < 0 ? -step : step;
}

/** Signed values: value v of row r gets the colour of sign(v) · curve(|v| / full(r)), `full(r)` being the magnitude
 *  that gets full colour (a row with none: paper). */
export const paintSigned: Paint = (data, values, rows, columns, full, curve, dark) => {
  const table = new Uint32Array(divergingTable(dark).buffer);
  paintRows(data, values, rows, columns, full, table, (value, scaleBy) => signedStep(value, scaleBy, curve) + SIDE_STEPS);
};

/** The legend's bar of a signed scale: −full on the left, 0 in the middle, +full on the right. */
export function divergingGradient(curve: ScaleCurve, dark: boolean): string {
  const stops = Array.from({ length: 33 }, (_, i) => {
    const x = (i - 16) / 16;
    return `${css(divergingColor(dark, Math.sign(x) * curvePosition(curve, Math.abs(x))))} ${((i / 32) * 100).toFixed(1)}%`;
  });
  return `linear-gradient(to right, ${stops.join(", ")})`;
}
