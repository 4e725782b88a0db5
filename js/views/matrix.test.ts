import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { drawCalls } from "../test/setup";
import { button } from "../test/dom";
import { attentionByte, buildFixture, fakeModel } from "../test/fixtures";
import { mount, settle, withLayoutWidth } from "../test/mount";
import { labelStep } from "./matrix";

function matrixCanvases(host: HTMLElement) {
  const [base, overlay] = host.querySelectorAll<HTMLCanvasElement>(".aw-matrix canvas");
  return { base, overlay };
}

/** Mouse position over the centre of cell (q, k), from the layout the view drew with. */
function pointAt(host: HTMLElement, q: number, k: number): MouseEventInit {
  const { base } = matrixCanvases(host);
  const images = drawCalls.get(base)!.filter((c) => c[0] === "drawImage");
  const image = images[images.length - 1];
  const [, , left, top, width] = image as [string, unknown, number, number, number];
  const cell = width / 8;
  return { clientX: left + (k + 0.5) * cell, clientY: top + (q + 0.5) * cell };
}

describe("matrix view", () => {
  let restoreWidth: () => void;
  beforeEach(() => (restoreWidth = withLayoutWidth(400)));
  afterEach(() => restoreWidth());

  it("draws the head as one scaled image, not one rectangle per cell", () => {
    const host = mount(fakeModel({ traits: { view: "matrix" } }));
    const all = drawCalls.get(matrixCanvases(host).base)!;
    const calls = all.slice(all.map((c) => c[0]).lastIndexOf("clearRect"));
    expect(calls.filter((c) => c[0] === "drawImage")).toHaveLength(1);
    expect(calls.filter((c) => c[0] === "fillRect")).toHaveLength(0);
  });

  it("reads out the hovered value and selects the query token on click", () => {
    const model = fakeModel({ traits: { view: "matrix", head: 1, layer: 1 } });
    const host = mount(model);
    const { overlay } = matrixCanvases(host);
    overlay.dispatchEvent(new MouseEvent("mousemove", pointAt(host, 2, 4)));
    const value = (attentionByte(1, 1, 2, 4, 8) / 255).toFixed(3);
    expect(host.querySelector(".aw-readout")!.textContent).toBe(`query 2 “cat” → key 4 “[SEP]”: ${value}`);
    overlay.dispatchEvent(new MouseEvent("click", pointAt(host, 6, 0)));
    expect(model.get("token")).toBe(6);
  });

  it("redraws when Python replaces the data, even for the same stack, layer and head", () => {
    const model = fakeModel({ traits: { view: "matrix" } });
    const host = mount(model);
    const images = () => drawCalls.get(matrixCanvases(host).base)!.filter((c) => c[0] === "drawImage").map((c) => c[1]);
    const before = images();
    const other = buildFixture({ tokens: ["a", "b", "c"] });
    model.fromPython({ meta: other.meta, _chunks: other.chunks });
    const after = images();
    expect(after.length).toBeGreaterThan(before.length);
    expect(after[after.length - 1]).not.toBe(before[before.length - 1]);
    expect((after[after.length - 1] as HTMLCanvasElement).width).toBe(3);
  });

  it("recovers when new meta arrives before its chunks, in two messages", async () => {
    const model = fakeModel({ traits: { view: "matrix" } });
    const host = mount(model);
    const other = buildFixture({ tokens: ["a", "b", "c"] });
    model.fromPython({ meta: other.meta });
    await settle();
    expect(host.querySelector(".aw-status")!.textContent).toMatch(/Could not load layer 0/);
    model.fromPython({ _chunks: other.chunks });
    await settle();
    expect(host.querySelector(".aw-status")!.textContent).toBe("");
    const images = drawCalls.get(matrixCanvases(host).base)!.filter((c) => c[0] === "drawImage");
    expect((images[images.length - 1][1] as HTMLCanvasElement).width).toBe(3);
  });

  it("focuses a head from its chip without hiding any", () => {
    const model = fakeModel({ traits: { view: "matrix" } });
    const host = mount(model);
    button(host, "Head 2").click();
    expect(model.get("head")).toBe(2);
    expect(model.get("heads")).toEqual([0, 1, 2]);
  });
});

describe("label thinning", () => {
  it("labels every row when rows are tall enough, and every k-th when they are not", () => {
    expect(labelStep(20)).toBe(1);
    expect(labelStep(4)).toBe(4);
    expect(labelStep(0.25)).toBe(52);
  });
});
