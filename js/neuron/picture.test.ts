import { describe, expect, it } from "vitest";
import { PICTURE_KEYS, pictureRows } from "./picture";

describe("pictureRows", () => {
  it("keeps every key of a short head, in order, with nothing left out", () => {
    expect(pictureRows([0.5, 0.2, 0.3])).toEqual({ lines: [{ key: 0 }, { key: 1 }, { key: 2 }], leftOut: 0, leftOutWeight: 0 });
  });

  it("keeps the keys with the most weight, in key order, and marks each run left out with its length", () => {
    const weights = [0.05, 0.4, 0.05, 0.05, 0.3, 0.05, 0.1];
    const { lines, leftOut, leftOutWeight } = pictureRows(weights, 3);
    expect(lines).toEqual([{ skipped: 1 }, { key: 1 }, { skipped: 2 }, { key: 4 }, { skipped: 1 }, { key: 6 }]);
    expect(leftOut).toBe(4);
    expect(leftOutWeight).toBeCloseTo(0.2, 12);
  });

  it("breaks ties by the earlier key, and says when the keys left out come last", () => {
    expect(pictureRows([0.25, 0.25, 0.25, 0.25], 2).lines).toEqual([{ key: 0 }, { key: 1 }, { skipped: 2 }]);
  });

  it("holds at most PICTURE_KEYS rows of a 4096-key head, whatever its weights", () => {
    const weights = Array.from({ length: 4096 }, (_, k) => Math.exp(-((k - 2000) ** 2) / 50));
    const { lines, leftOut } = pictureRows(weights);
    const keys = lines.flatMap((line) => ("key" in line ? [line.key] : []));
    expect(keys).toHaveLength(PICTURE_KEYS);
    expect(keys).toContain(2000);
    expect(leftOut).toBe(4096 - PICTURE_KEYS);
    expect(lines.reduce((sum, line) => sum + ("key" in line ? 1 : line.skipped), 0)).toBe(4096);
  });
});
