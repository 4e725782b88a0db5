// A signed stack (A − B of two compared runs) in the views: the matrix reads and paints signed values, the head view
// says its lines are |A − B|.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Traits } from "../contract";
import { drawCalls } from "../test/setup";
import { attentionByte, buildFixture } from "../test/fixtures";
import { FakeModel } from "../test/fake-model";
import { mount, settle, withLayoutWidth } from "../test/mount";

/** The fixture with its one stack marked signed: its bytes read as int8 (a peak byte of 192 is −64, the rest +9). */
function signedModel(traits: Partial<Traits>): FakeModel {
  const fixture = buildFixture({ traits });
  fixture.traits.meta.stacks[0] = { ...fixture.traits.meta.stacks[0], signed: true, difference_of: ["A:self", "B:self"] };
  return new FakeModel(fixture.traits);
}

const signedValue = (byte: number) => ((byte << 24) >> 24) / 127;

describe("a signed stack in the views", () => {
  let restoreWidth: () => void;
  beforeEach(() => (restoreWidth = withLayoutWidth(400)));
  afterEach(() => restoreWidth());

  it("the matrix reads out the signed value and paints both signs in diverging colours", () => {
    const host = mount(signedModel({ view: "matrix", layer: 1, head: 1 }));
    const [base, overlay] = host.querySelectorAll<HTMLCanvasElement>(".aw-matrix canvas");
    const images = drawCalls.get(base)!.filter((c) => c[0] === "drawImage");
    const [left, top, width] = (images[images.length - 1] as number[]).slice(-4);
    const cell = width / 8;
    const readout = (q: number, k: number) => {
      overlay.dispatchEvent(new MouseEvent("mousemove", { clientX: left + (k + 0.5) * cell, clientY: top + (q + 0.5) * cell }));
      return host.querySelector(".aw-readout")!.textContent;
    };
    for (const [q, k] of [[2, 4], [2, 3], [0, 0]]) {
      const value = signedValue(attentionByte(1, 1, q, k, 8)).toFixed(3);
      expect(readout(q, k)).toMatch(new RegExp(`: ${value} \\(A:self − B:self\\)$`));
    }
    expect(readout(2, 4)).toMatch(/: -0\.\d{3} /);
    const picture = images[images.length - 1][1] as HTMLCanvasElement;
    const put = drawCalls.get(picture)!.filter((c) => c[0] === "putImageData");
    const data = (put[put.length - 1][1] as ImageData).data;
    let red = 0;
    let blue = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i] > data[i + 2] + 20) red++;
      if (data[i + 2] > data[i] + 20) blue++;
    }
    expect(red).toBeGreaterThan(0);
    expect(blue).toBeGreaterThan(0);
    expect(host.querySelector(".aw-legend")!.textContent).toMatch(/^−1.*\+1$/);
  });

  it("the head view draws lines of |A − B| and says so", async () => {
    const host = mount(signedModel({ view: "head" }));
    await settle();
    expect(host.querySelector(".aw-status")!.textContent).toMatch(/Lines show \|A:self − B:self\|, how much the two runs differ/);
  });
});
