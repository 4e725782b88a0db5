// Colours of heads and of the attention ramp, in both themes.

export type Rgb = readonly [number, number, number];

function hslToRgb(hue: number, saturation: number, lightness: number): Rgb {
  const a = saturation * Math.min(lightness, 1 - lightness);
  const channel = (n: number) => {
    const k = (n + hue / 30) % 12;
    return Math.round(255 * (lightness - a * Math.max(-1, Math.min(k - 3, 9 - k, 1))));
  };
  return [channel(0), channel(8), channel(4)];
}

function greatestCommonDivisor(a: number, b: number): number {
  return b === 0 ? a : greatestCommonDivisor(b, a % b);
}

/**
 * A distinct colour per head for up to 64 heads. Hues are evenly spaced, but head h takes
 * hue slot (h × stride) mod count with a stride near 0.38 × count, so neighbouring heads sit
 * far apart on the wheel; lightness alternates between adjacent slots so near hues differ too.
 */
export function headColor(head: number, count: number, dark: boolean): Rgb {
  const n = Math.max(1, count);
  let stride = Math.max(1, Math.round(n * 0.382));
  while (n > 1 && greatestCommonDivisor(stride, n) !== 1) stride++;
  const slot = (head * stride) % n;
  const hue = (slot * 360) / n + 8;
  const light = slot % 2 === 0;
  const lightness = dark ? (light ? 0.7 : 0.58) : light ? 0.47 : 0.36;
  return hslToRgb(hue, dark ? 0.75 : 0.7, lightness);
}

/** Black or white, whichever reads better on `background` (WCAG relative luminance). */
export function textOn([r, g, b]: Rgb): string {
  const linear = (c: number) => ((c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
  const luminance = 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
  return luminance > 0.22 ? "#111111" : "#ffffff";
}

export function css([r, g, b]: Rgb, alpha = 1): string {
  return alpha >= 1 ? `rgb(${r}, ${g}, ${b})` : `rgba(${r}, ${g}, ${b}, ${alpha})`;
}

/** Background of the heatmaps: the page colour of each theme, so p = 0 disappears. */
export const paper = (dark: boolean): Rgb => (dark ? [30, 32, 36] : [255, 255, 255]);

/** A CSS gradient, left to right, of the ramp's colour at `position(x)` for x from 0 to 1: a legend of a scale. */
export function rampGradient(dark: boolean, position: (x: number) => number): string {
  const stops = Array.from({ length: 33 }, (_, i) => {
    const x = i / 32;
    return `${css(rampColor(dark, position(x)))} ${(x * 100).toFixed(1)}%`;
  });
  return `linear-gradient(to right, ${stops.join(", ")})`;
}

/** The heatmaps' colour at `position` from 0 (paper) to 1 (ink), through a blue. */
function rampColor(dark: boolean, position: number): Rgb {
  const stops: Rgb[] = dark
    ? [paper(true), [44, 86, 150], [94, 160, 235], [225, 240, 255]]
    : [paper(false), [150, 190, 235], [40, 100, 190], [8, 30, 90]];
  const t = Math.min(1, Math.max(0, position)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(t));
  const f = t - i;
  return [0, 1, 2].map((c) => Math.round(stops[i][c] + (stops[i + 1][c] - stops[i][c]) * f)) as unknown as Rgb;
}

/** 256 RGBA entries, entry `byte` the ramp's colour at `position(byte)`: a heatmap's byte → colour table. */
export function rampTable(dark: boolean, position: (byte: number) => number): Uint8ClampedArray {
  const table = new Uint8ClampedArray(256 * 4);
  for (let byte = 0; byte < 256; byte++) {
    table.set(rampColor(dark, position(byte)), byte * 4);
    table[byte * 4 + 3] = 255;
  }
  return table;
}

/**
 * 256 RGBA entries from p = 0 (paper) to p = 1 (ink). A square root spreads the many small
 * probabilities over more of the ramp, so faint attention is visible without one strong cell
 * drowning the rest.
 */
export function attentionRamp(dark: boolean): Uint8ClampedArray {
  return rampTable(dark, (byte) => Math.sqrt(byte / 255));
}
