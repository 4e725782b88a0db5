import { describe, expect, it } from "vitest";
import { attentionRamp, headColor } from "./colors";

describe("head colours", () => {
  it.each([12, 32, 64])("gives %i heads distinct colours, neighbours clearly apart", (count) => {
    for (const dark of [false, true]) {
      const colours = Array.from({ length: count }, (_, h) => headColor(h, count, dark));
      expect(new Set(colours.map(String)).size).toBe(count);
      for (let h = 1; h < count; h++) {
        const distance = Math.hypot(...colours[h].map((c, i) => c - colours[h - 1][i]));
        expect(distance).toBeGreaterThan(60);
      }
    }
  });
});

describe("attention ramp", () => {
  it("starts at the page colour and darkens (light) or brightens (dark) with attention", () => {
    const light = attentionRamp(false);
    expect([...light.slice(0, 3)]).toEqual([255, 255, 255]);
    expect(light[255 * 4]).toBeLessThan(light[128 * 4]);
    const dark = attentionRamp(true);
    expect(dark[255 * 4]).toBeGreaterThan(dark[0]);
  });
});
