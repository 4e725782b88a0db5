import { describe, expect, it } from "vitest";
import { attentionRamp } from "./colors";
import { curvePosition, fullColorLabel, paintScaled, type ColorScale } from "./scale";

/** The colour paintScaled gives each cell of a 2 × 3 head, as [r, g, b] strings. */
function colours(bytes: number[], scale: ColorScale): string[] {
  const data = new Uint8ClampedArray(bytes.length * 4);
  paintScaled(data, Uint8Array.from(bytes), 0, 2, 3, scale, false);
  return Array.from({ length: bytes.length }, (_, i) => String([...data.slice(i * 4, i * 4 + 3)]));
}

describe("matrix colour scale", () => {
  it("maps a fraction of the full-colour value along each curve", () => {
    expect([0, 0.25, 1, 2].map((t) => curvePosition("sqrt", t))).toEqual([0, 0.5, 1, 1]);
    expect(curvePosition("linear", 0.25)).toBe(0.25);
    // Log over three decades: a thousandth of the maximum is where colour starts, a tenth is two thirds along.
    expect(curvePosition("log", 0.001)).toBeCloseTo(0, 12);
    expect(curvePosition("log", 0.0001)).toBe(0);
    expect(curvePosition("log", 0.1)).toBeCloseTo(2 / 3, 12);
  });

  it("draws 0–1 as the fixed ramp always did, and gives full colour to the head's or each row's largest value", () => {
    const bytes = [0, 10, 40, 0, 20, 80];
    const ramp = attentionRamp(false);
    const fixed = colours(bytes, { range: "fixed", curve: "sqrt" });
    expect(fixed).toEqual(bytes.map((b) => String([...ramp.slice(b * 4, b * 4 + 3)])));
    const full = String([...ramp.slice(255 * 4, 255 * 4 + 3)]);
    const head = colours(bytes, { range: "head", curve: "sqrt" });
    expect(head.filter((c) => c === full)).toEqual([full]);
    expect(head[5]).toBe(full);
    // Per row: 40 is row 0's largest, 80 row 1's, so half of each row's largest gets one colour.
    const row = colours(bytes, { range: "row", curve: "sqrt" });
    expect([row[2], row[5]]).toEqual([full, full]);
    expect(row[1]).not.toBe(head[1]);
    const halves = colours([0, 20, 40, 0, 40, 80], { range: "row", curve: "linear" });
    expect(halves[1]).toBe(halves[4]);
  });

  it("says in the legend what full colour stands for", () => {
    expect(fullColorLabel("fixed", 255, (b) => b / 255)).toBe("1");
    expect(fullColorLabel("head", 110, (b) => b / 255)).toBe("0.431 (head max)");
    expect(fullColorLabel("row", null, (b) => b / 255)).toBe("row max");
  });
});
