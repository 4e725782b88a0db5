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

/** A CSS gradient of the ramp, for legends. */
export function rampGradient(dark: boolean): string {
  const ramp = attentionRamp(dark);
  const stops = [0, 16, 48, 96, 160, 255].map((byte) => `rgb(${ramp[byte * 4]}, ${ramp[byte * 4 + 1]}, ${ramp[byte * 4 + 2]}) ${((byte / 255) * 100).toFixed(0)}%`);
  return `linear-gradient(to right, ${stops.join(", ")})`;
}

/**
 * 256 RGBA entries from p = 0 (paper) to p = 1 (ink), through a blue, so faint attention
 * is visible without one strong cell drowning the rest.
 */
export function attentionRamp(dark: boolean): Uint8ClampedArray {
  const stops: Rgb[] = dark
    ? [paper(true), [44, 86, 150], [94, 160, 235], [225, 240, 255]]
    : [paper(false), [150, 190, 235], [40, 100, 190], [8, 30, 90]];
  const ramp = new Uint8ClampedArray(256 * 4);
  for (let byte = 0; byte < 256; byte++) {
    // A square root spreads the many small probabilities over more of the ramp.
    const t = Math.sqrt(byte / 255) * (stops.length - 1);
    const i = Math.min(stops.length - 2, Math.floor(t));
    const f = t - i;
    for (let c = 0; c < 3; c++) ramp[byte * 4 + c] = stops[i][c] + (stops[i + 1][c] - stops[i][c]) * f;
    ramp[byte * 4 + 3] = 255;
  }
  return ramp;
}
