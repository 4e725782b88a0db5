import { describe, expect, it } from "vitest";
import { attentionRamp } from "./colors";
import { curvePosition, defaultScale, fullColorLabel, paintValues, type ScaleCurve } from "./scale";

/** The colour paintValues gives each cell of a 2 × 3 grid, as [r, g, b] strings, full colour at `full(row)`. */
function colours(values: number[], full: (row: number) => number, curve: ScaleCurve = "sqrt"): string[] {
  const data = new Uint8ClampedArray(values.length * 4);
  paintValues(data, Float32Array.from(values), 2, 3, full, curve, false);
  return Array.from({ length: values.length }, (_, i) => String([...data.slice(i * 4, i * 4 + 3)]));
}

const rgb = (ramp: Uint8ClampedArray, byte: number) => String([...ramp.slice(byte * 4, byte * 4 + 3)]);

describe("matrix colour scale", () => {
  it("maps a fraction of the full-colour value along each curve", () => {
    expect([0, 0.25, 1, 2].map((t) => curvePosition("sqrt", t))).toEqual([0, 0.5, 1, 1]);
    expect(curvePosition("linear", 0.25)).toBe(0.25);
    // Log over three decades: a thousandth of the maximum is where colour starts, a tenth is two thirds along.
    expect(curvePosition("log", 0.001)).toBeCloseTo(0, 12);
    expect(curvePosition("log", 0.0001)).toBe(0);
    expect(curvePosition("log", 0.1)).toBeCloseTo(2 / 3, 12);
  });

  it("paints 0 as paper and the full-colour value as the ramp's end, with each row's own full colour when asked", () => {
    const ramp = attentionRamp(false);
    const [paper, full] = [rgb(ramp, 0), rgb(ramp, 255)];
    const values = [0, 0.1, 0.4, 0, 0.2, 0.8];
    const fixed = colours(values, () => 1);
    expect(fixed[0]).toBe(paper);
    expect(fixed.filter((c) => c === full)).toEqual([]);
    const head = colours(values, () => 0.8);
    expect(head.filter((c) => c === full)).toEqual([full]);
    // Per row: 0.4 is row 0's largest, 0.8 row 1's, so half of each row's largest gets one colour.
    const row = colours(values, (r) => [0.4, 0.8][r], "linear");
    expect([row[2], row[5]]).toEqual([full, full]);
    const halves = colours([0, 0.2, 0.4, 0, 0.4, 0.8], (r) => [0.4, 0.8][r], "linear");
    expect(halves[1]).toBe(halves[4]);
    // A value past the full colour (the sink, on a scale past key 0) is full colour, not beyond.
    expect(colours([0.9, 0, 0, 0, 0, 0], () => 0.1)[0]).toBe(full);
  });

  it("tells apart weights near 1/4096 on the log curve, where a byte of 1/255 cannot", () => {
    const tiny = [1 / 4096, 3 / 4096, 1 / 8192, 0, 0, 0];
    const logged = colours(tiny, () => 0.05, "log");
    expect(new Set(logged.slice(0, 3)).size).toBe(3);
    const bytes = tiny.map((v) => Math.round(v * 255) / 255);
    expect(new Set(colours(bytes, () => 0.05, "log").slice(0, 3)).size).toBe(1);
  });

  it("opens long inputs past the first key's column on a log curve, and short ones on 0 to 1", () => {
    expect(defaultScale(12)).toEqual({ range: "fixed", curve: "sqrt" });
    expect(defaultScale(4096)).toEqual({ range: "rest", curve: "log" });
  });

  it("says in the legend what full colour stands for", () => {
    expect(fullColorLabel("fixed", 0.3)).toBe("1");
    expect(fullColorLabel("head", 110 / 255)).toBe("0.431 (head max)");
    expect(fullColorLabel("rest", 0.052)).toBe("0.052 (max past key 0)");
    expect(fullColorLabel("row", null)).toBe("row max");
  });
});
