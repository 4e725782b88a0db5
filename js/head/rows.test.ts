import { describe, expect, it } from "vitest";
import { bandAround, bandHolds, endsInBand, rowWindow } from "./rows";

describe("virtual token rows", () => {
  it("keeps the rows in view and a margin in the DOM, within the column", () => {
    // 4096 rows of 20 px, a view of 700 px.
    expect(rowWindow(0, 700, 20, 4096, 12)).toEqual([0, 47]);
    expect(rowWindow(20_000, 700, 20, 4096, 12)).toEqual([988, 1047]);
    expect(rowWindow(4096 * 20 - 700, 700, 20, 4096, 12)).toEqual([4049, 4096]);
    // Above the columns (their labels in view) and a column shorter than the view.
    expect(rowWindow(-16, 700, 20, 4096, 0)).toEqual([0, 35]);
    expect(rowWindow(0, 700, 20, 8, 12)).toEqual([0, 8]);
  });

  it("covers a view and half as much again each side with a band, and moves it only once the view leaves it", () => {
    const band = bandAround(2000, 700, 81_920);
    expect(band).toEqual({ top: 1650, height: 1400 });
    expect(bandHolds(band, 2350, 700)).toBe(true);
    expect(bandHolds(band, 1650, 700)).toBe(true);
    expect(bandHolds(band, 2400, 700)).toBe(false);
    expect(bandAround(0, 700, 81_920)).toEqual({ top: 0, height: 1050 });
    expect(bandAround(81_220, 700, 81_920)).toEqual({ top: 80_870, height: 1050 });
  });

  it("keeps the lines with an end in the band, not those only passing through it", () => {
    const band = { top: 1000, height: 500 };
    expect(endsInBand(band, 1200, 30_000)).toBe(true);
    expect(endsInBand(band, 10, 1499)).toBe(true);
    expect(endsInBand(band, 10, 30_000)).toBe(false);
    expect(endsInBand(band, 10, 900)).toBe(false);
    expect(endsInBand(band, 1600, 2000)).toBe(false);
  });
});
