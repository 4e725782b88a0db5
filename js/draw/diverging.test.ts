import { describe, expect, it } from "vitest";
import { paper } from "./colors";
import { divergingColor, divergingGradient, paintSigned, signedStep } from "./diverging";

/** The colour paintSigned gives each value of one row, as [r, g, b], full colour at magnitude `full`. */
function colours(values: number[], full: number, dark = false): number[][] {
  const data = new Uint8ClampedArray(values.length * 4);
  paintSigned(data, Float32Array.from(values), 1, values.length, () => full, "linear", dark);
  return values.map((_, i) => [...data.slice(i * 4, i * 4 + 3)]);
}

describe("the diverging colour map of signed stacks", () => {
  it("paints 0 as the paper, negatives blue and positives red, in both themes", () => {
    for (const dark of [false, true]) {
      const [minus, zero, plus] = colours([-0.4, 0, 0.4], 0.4, dark);
      expect(zero).toEqual([...paper(dark)]);
      expect(minus[2]).toBeGreaterThan(minus[0] + 60); // blue over red
      expect(plus[0]).toBeGreaterThan(plus[2] + 60); // red over blue
      // Both ends stand well apart from the paper.
      const distance = (c: number[]) => Math.hypot(...c.map((v, i) => v - paper(dark)[i]));
      expect(distance(minus)).toBeGreaterThan(150);
      expect(distance(plus)).toBeGreaterThan(150);
    }
  });

  it("is symmetric around 0: −d and +d are as far along their sides, and full colour is at the largest magnitude", () => {
    for (const d of [0.05, 0.2, 0.5, 1]) expect(signedStep(-d, 1, "sqrt")).toBe(-signedStep(d, 1, "sqrt"));
    expect(signedStep(0.5, 2, "linear")).toBe(255);
    expect(signedStep(-0.5, 2, "linear")).toBe(-255);
    expect(signedStep(0.25, 2, "linear")).toBe(128);
    expect(signedStep(0, 2, "linear")).toBe(0);
    // Beyond the full-colour magnitude stays full colour; a row with none gets paper.
    expect(colours([0.9], 0.5)).toEqual(colours([0.5], 0.5));
    expect(colours([0.3, -0.3], 0)).toEqual([[...paper(false)], [...paper(false)]]);
  });

  it("grows stronger with the magnitude on each side", () => {
    const lightness = (c: number[]) => c[0] + c[1] + c[2];
    const [weak, strong] = colours([0.1, 0.8], 1);
    const [weakBlue, strongBlue] = colours([-0.1, -0.8], 1);
    expect(lightness(strong)).toBeLessThan(lightness(weak));
    expect(lightness(strongBlue)).toBeLessThan(lightness(weakBlue));
    expect(divergingColor(false, 1)).not.toEqual(divergingColor(false, -1));
  });

  it("draws its legend from −full through the paper to +full", () => {
    const gradient = divergingGradient("linear", false);
    const stops = gradient.match(/rgb\([^)]*\) [0-9.]+%/g)!;
    expect(stops).toHaveLength(33);
    expect(stops[16]).toBe("rgb(255, 255, 255) 50.0%");
    expect(stops[0]).toBe(`rgb(${divergingColor(false, -1).join(", ")}) 0.0%`);
    expect(stops[32]).toBe(`rgb(${divergingColor(false, 1).join(", ")}) 100.0%`);
  });
});
