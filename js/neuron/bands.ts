// Vectors as colour bands: one pixel column per dimension, blue for negative and orange for
// positive (a pair colour-blind readers tell apart), stronger with the magnitude.

import { imageCanvas } from "../draw/canvas";
import { paper, type Rgb } from "../draw/colors";

const NEGATIVE = { light: [33, 102, 172] as Rgb, dark: [110, 170, 240] as Rgb };
const POSITIVE = { light: [214, 96, 0] as Rgb, dark: [255, 160, 60] as Rgb };

/** The colour of `value` on a scale where ±`max` is full strength. */
export function divergingColor(value: number, max: number, dark: boolean): Rgb {
  const end = value < 0 ? (dark ? NEGATIVE.dark : NEGATIVE.light) : dark ? POSITIVE.dark : POSITIVE.light;
  const t = max > 0 ? Math.min(1, Math.abs(value) / max) : 0;
  const base = paper(dark);
  return [0, 1, 2].map((c) => Math.round(base[c] + (end[c] - base[c]) * t)) as unknown as Rgb;
}

/** A CSS gradient from -max (left) through 0 to +max, for the legend. */
export function divergingGradient(dark: boolean): string {
  const stops = [-1, -0.5, 0, 0.5, 1].map((v) => `rgb(${divergingColor(v, 1, dark).join(", ")})`);
  return `linear-gradient(to right, ${stops.join(", ")})`;
}

/** Largest magnitude among the vectors: the full-strength end of their scale. */
export function maxMagnitude(vectors: Float32Array[]): number {
  let max = 0;
  for (const vector of vectors) for (const v of vector) if (Math.abs(v) > max) max = Math.abs(v);
  return max;
}

/** `vectors` as a dim × count image, one row per vector, to be scaled up with drawImage. */
export function bandImage(vectors: Float32Array[], dim: number, max: number, dark: boolean): HTMLCanvasElement | null {
  return imageCanvas(dim, Math.max(1, vectors.length), (data) => {
    vectors.forEach((vector, row) => {
      for (let d = 0; d < dim; d++) {
        const [r, g, b] = divergingColor(vector[d], max, dark);
        const i = (row * dim + d) * 4;
        data[i] = r;
        data[i + 1] = g;
        data[i + 2] = b;
        data[i + 3] = 255;
      }
    });
  });
}
