import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { tileLength } from "../contract";
import { drawCalls } from "../test/setup";
import { button, chooseOption, labelled } from "../test/dom";
import { FakeModel } from "../test/fake-model";
import { attentionByte, buildFixture, fakeModel } from "../test/fixtures";
import { golden, goldenTraits } from "../test/golden";
import { mount, settle, withLayoutWidth } from "../test/mount";
import { labelStep } from "./matrix";
import { CELL_AT_MAX_ZOOM } from "./zoom";

/** The RGBA pixels of the heatmap image the view drew last. */
function heatmapPixels(host: HTMLElement): Uint8ClampedArray {
  const images = drawCalls.get(matrixCanvases(host).base)!.filter((c) => c[0] === "drawImage");
  const picture = images[images.length - 1][1] as HTMLCanvasElement;
  const put = drawCalls.get(picture)!.filter((c) => c[0] === "putImageData");
  return (put[put.length - 1][1] as ImageData).data;
}

/** Lines the base canvas stroked since its last clear, as [x0, y0, x1, y1]. */
function strokedLines(host: HTMLElement): number[][] {
  const calls = drawCalls.get(matrixCanvases(host).base)!;
  const afterClear = calls.slice(calls.map((c) => c[0]).lastIndexOf("clearRect"));
  return afterClear.flatMap((call, i) => (call[0] === "moveTo" ? [[call[1], call[2], afterClear[i + 1][1], afterClear[i + 1][2]] as number[]] : []));
}

function matrixCanvases(host: HTMLElement) {
  const [base, overlay] = host.querySelectorAll<HTMLCanvasElement>(".aw-matrix canvas");
  return { base, overlay };
}

/** Where the view last drew the image's columns from `sourceX` on: [left, top, width, height] on the canvas. */
function drawnAt(host: HTMLElement, sourceX = 0): number[] {
  const images = drawCalls.get(matrixCanvases(host).base)!.filter((c) => c[0] === "drawImage" && c[2] === sourceX);
  return (images[images.length - 1] as number[]).slice(-4);
}

/** Mouse position over the centre of cell (q, k), from the layout the view drew with. */
function pointAt(host: HTMLElement, q: number, k: number, nk = 8): MouseEventInit {
  const [left, top, width] = drawnAt(host);
  const cell = width / nk;
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
    expect(host.querySelector(".aw-status")!.textContent).toMatch(/Could not load head 0: .* re-create the widget/);
    model.fromPython({ _chunks: other.chunks });
    await settle();
    expect(host.querySelector(".aw-status")!.textContent).toBe("");
    const images = drawCalls.get(matrixCanvases(host).base)!.filter((c) => c[0] === "drawImage");
    expect((images[images.length - 1][1] as HTMLCanvasElement).width).toBe(3);
  });

  it("scales colour to the head's or each row's maximum, on a chosen curve, and the legend says which", () => {
    const model = fakeModel({ traits: { view: "matrix" } });
    const host = mount(model);
    const legend = () => host.querySelector(".aw-legend")!.textContent;
    // The fixture's largest value is byte 192 of 255: on 0–1 it never reaches full colour.
    const peak = 0; // the pixel of query 0, key 0: query 0's largest value (layer 0, head 0)
    const fixed = heatmapPixels(host).slice(peak, peak + 3);
    expect(legend()).toBe("01");
    chooseOption(labelled(host, "Full colour at"), "head");
    const head = heatmapPixels(host).slice(peak, peak + 3);
    expect([...head]).not.toEqual([...fixed]);
    expect(legend()).toBe(`0${(192 / 255).toFixed(3)} (head max)`);
    chooseOption(labelled(host, "Curve"), "log");
    expect(host.querySelector(".aw-matrix-head")!.getAttribute("title")).toMatch(/head max\), log scale/);
    const faint = heatmapPixels(host).slice(4, 7); // key 1: about 5% of the peak
    chooseOption(labelled(host, "Curve"), "linear");
    expect([...heatmapPixels(host).slice(4, 7)]).not.toEqual([...faint]);
    chooseOption(labelled(host, "Full colour at"), "row");
    expect(legend()).toBe("0row max");
    // Hovering tells the value and where it sits on the row's scale.
    matrixCanvases(host).overlay.dispatchEvent(new MouseEvent("mousemove", pointAt(host, 0, 0)));
    expect(host.querySelector(".aw-readout")!.textContent).toMatch(/: 0\.753 \(100% of the row's maximum\)$/);
    // The choice outlives a trip to another view.
    model.fromPython({ view: "head" });
    model.fromPython({ view: "matrix" });
    expect([labelled(host, "Full colour at").value, labelled(host, "Curve").value]).toEqual(["row", "linear"]);
    expect(legend()).toBe("0row max");
  });

  it("marks where sentence B starts on both axes, and only for a pair", () => {
    const host = mount(fakeModel({ segmentB: 5, traits: { view: "matrix" } }));
    const [left, top, width] = drawnAt(host);
    const cell = width / 8;
    const lines = strokedLines(host);
    expect(lines).toContainEqual([left - 4, top + 5 * cell, left + 8 * cell, top + 5 * cell]);
    expect(lines).toContainEqual([left + 5 * cell, top - 4, left + 5 * cell, top + 8 * cell]);
    expect(host.querySelector(".aw-readout")!.textContent).toMatch(/orange lines mark where sentence B starts/);
    const single = mount(fakeModel({ segmentB: null, traits: { view: "matrix" } }));
    expect(strokedLines(single)).toEqual([]);
  });

  it("shows the layer's sink as one more column, apart from the keys, named as meta names it", () => {
    const { expected, meta } = golden();
    const [nq, nk] = expected.attention.shape;
    const head = 2;
    const host = mount(new FakeModel(goldenTraits({ view: "matrix", head })));
    const [keysLeft, top, keysWidth, height] = drawnAt(host);
    const [sinkLeft, sinkTop, sinkWidth, sinkHeight] = drawnAt(host, nk); // the image's last column
    const cell = keysWidth / nk;
    expect([sinkTop, sinkHeight]).toEqual([top, height]);
    expect(sinkLeft).toBeGreaterThan(keysLeft + keysWidth); // set apart by a gap
    expect(sinkWidth).toBeCloseTo(cell);
    const q = 3;
    const overSink = { clientX: sinkLeft + sinkWidth / 2, clientY: top + (q + 0.5) * cell };
    matrixCanvases(host).overlay.dispatchEvent(new MouseEvent("mousemove", overSink));
    const weight = expected.attention.sink_weights[head * nq + q];
    const to = "<prompt> (the 2 prompt positions the model puts before the text, no token of the text)";
    expect(host.querySelector(".aw-readout")!.textContent).toBe(`query ${q} “${meta.sides.input.tokens[q]}” → ${to}: ${weight.toFixed(3)}`);
    // The sink is a key of the same softmax: a row's weights and its sink's make 1, up to rounding.
    const row = expected.attention.probabilities.slice((head * nq + q) * nk, (head * nq + q + 1) * nk);
    expect(row.reduce((a: number, b: number) => a + b, weight)).toBeCloseTo(1, 1);
  });

  it("focuses a head from its chip without hiding any", () => {
    const model = fakeModel({ traits: { view: "matrix" } });
    const host = mount(model);
    button(host, "Head 2").click();
    expect(model.get("head")).toBe(2);
    expect(model.get("heads")).toEqual([0, 1, 2]);
  });
});

/** The last image drawn on the base canvas: its source rectangle and where it went, and the picture itself. */
function lastImage(host: HTMLElement): { picture: HTMLCanvasElement; source: number[]; target: number[] } {
  const images = drawCalls.get(matrixCanvases(host).base)!.filter((c) => c[0] === "drawImage");
  const [, picture, ...rest] = images[images.length - 1] as [string, HTMLCanvasElement, ...number[]];
  return { picture, source: rest.slice(0, 4), target: rest.slice(4) };
}

const imageCount = (host: HTMLElement) => drawCalls.get(matrixCanvases(host).base)!.filter((c) => c[0] === "drawImage").length;

function wheel(host: HTMLElement, at: MouseEventInit, deltaY: number, times = 1): WheelEvent {
  let event!: WheelEvent;
  for (let i = 0; i < times; i++) {
    event = new WheelEvent("wheel", { ...at, deltaY, cancelable: true, bubbles: true });
    matrixCanvases(host).overlay.dispatchEvent(event);
  }
  return event;
}

const readoutText = (host: HTMLElement) => host.querySelector(".aw-readout")!.textContent;
const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("matrix zoom", () => {
  let restoreWidth: () => void;
  beforeEach(() => (restoreWidth = withLayoutWidth(400)));
  afterEach(() => restoreWidth());

  const TOKENS = Array.from({ length: 64 }, (_, i) => `t${i}`);

  it("zooms around the pointer down to single cells, pans by dragging without selecting a row, and resets on 0", () => {
    const model = fakeModel({ tokens: TOKENS, traits: { view: "matrix" } });
    const host = mount(model);
    const whole = drawnAt(host);
    const at = pointAt(host, 40, 20, 64);
    const zoomIn = wheel(host, at, -300, 10);
    expect(zoomIn.defaultPrevented).toBe(true);
    // Deepest zoom: one source cell is CELL_AT_MAX_ZOOM pixels, and the cell under the pointer stayed under it.
    const { source, target } = lastImage(host);
    expect(target[2] / source[2]).toBeCloseTo(CELL_AT_MAX_ZOOM, 6);
    const { overlay } = matrixCanvases(host);
    overlay.dispatchEvent(new MouseEvent("mousemove", at));
    expect(readoutText(host)).toBe(`query 40 “t40” → key 20 “t20”: ${(attentionByte(0, 0, 40, 20, 64) / 255).toFixed(3)}`);
    // Dragging 48 pixels right shows two cells further left under the pointer; the press selects nothing.
    overlay.dispatchEvent(new MouseEvent("mousedown", { ...at, button: 0 }));
    window.dispatchEvent(new MouseEvent("mousemove", { clientX: at.clientX! + 2 * CELL_AT_MAX_ZOOM, clientY: at.clientY }));
    window.dispatchEvent(new MouseEvent("mouseup"));
    overlay.dispatchEvent(new MouseEvent("click", at));
    expect(model.get("token")).toBeNull();
    overlay.dispatchEvent(new MouseEvent("mousemove", { ...at, clientX: at.clientX! + 1 }));
    expect(readoutText(host)).toMatch(/^query 40 “t40” → key 18 “t18”/);
    overlay.dispatchEvent(new KeyboardEvent("keydown", { key: "0", bubbles: true }));
    expect(drawnAt(host)).toEqual(whole);
    // On the whole map, scrolling out is the page's: not taken.
    expect(wheel(host, at, 300).defaultPrevented).toBe(false);
  });

  it("zooms and pans with + − and the arrows on the focused map", () => {
    const host = mount(fakeModel({ tokens: TOKENS, traits: { view: "matrix" } }));
    const { overlay } = matrixCanvases(host);
    const press = (key: string) => overlay.dispatchEvent(new KeyboardEvent("keydown", { key, bubbles: true, cancelable: true }));
    const [left, top, width, height] = drawnAt(host);
    const under = (x: number, y: number) => {
      overlay.dispatchEvent(new MouseEvent("mousemove", { clientX: left + x * width, clientY: top + y * height }));
      return readoutText(host)!.match(/^query (\d+) .* key (\d+) /)!.slice(1).map(Number);
    };
    press("+");
    // Zoomed 1.5 times around the centre, which stays put.
    const shown = 64 / 1.5;
    expect(under(0.5, 0.5)).toEqual([32, 32]);
    expect(under(0.9, 0.9)).toEqual([Math.floor(32 + 0.4 * shown), Math.floor(32 + 0.4 * shown)]);
    press("ArrowRight");
    press("ArrowDown");
    // Each arrow moves a fifth of what is on screen, and never past the map's edge.
    const corner = 32 - shown / 2;
    expect(under(0.001, 0.001)).toEqual([Math.floor(corner + 0.2 * shown), Math.floor(corner + 0.2 * shown)]);
    press("ArrowDown");
    expect(under(0.001, 0.001)).toEqual([Math.floor(64 - shown), Math.floor(corner + 0.2 * shown)]);
    press("-");
    expect(drawnAt(host)).toEqual([left, top, width, height]);
    expect(under(0.5, 0.5)).toEqual([32, 32]);
  });

  it("draws the max-pooled map by default and the mean-pooled one when chosen", () => {
    const host = mount(fakeModel({ tokens: TOKENS, traits: { view: "matrix" } }));
    expect(labelled(host, "Pooling").value).toBe("max");
    chooseOption(labelled(host, "Pooling"), "mean");
    expect(labelled(host, "Pooling").value).toBe("mean");
  });

  it("asks Python for tiles of a long head, pooled to the canvas, and draws only the region still on screen", async () => {
    const n = 2100; // past what is fetched whole (4 MiB)
    const tokens = Array.from({ length: n }, (_, i) => `w${i}`);
    const thumbnail = Uint8Array.from({ length: 64 * 64 }, (_, i) => (i % 65 === 0 ? 255 : 0)); // its diagonal
    const traits = { view: "matrix" as const, _thumbs: { "self/0": new DataView(thumbnail.buffer) } };
    const model = fakeModel({ tokens, layers: 1, heads: 1, preload: "none", thumbnails: false, traits });
    const host = mount(model);
    // The head's thumbnail stands in until the overview tile arrives, and the map says it is busy meanwhile.
    const busy = () => host.querySelector(".aw-matrix")!.getAttribute("aria-busy");
    expect(lastImage(host).picture.width).toBe(64);
    expect(busy()).toBe("true");
    const [overview] = model.sent();
    expect(overview).toMatchObject({ what: "tile", q0: 0, q1: n, k0: 0, k1: n, pooling: "max" });
    expect(overview.rows).toBeLessThan(400);
    expect(model.sent().filter((m) => m.what === "attention")).toEqual([]);
    const reply = (request: any, value: (i: number) => number) => {
      const values = Float32Array.from({ length: tileLength(request.rows, request.columns, false) }, (_, i) => (i < 2 ? 0.5 : value(i - 2)));
      model.reply({ ...request, kind: "response", dtype: "float32" }, [new DataView(values.buffer)]);
    };
    reply(overview, () => 0.01);
    await settle();
    expect(lastImage(host).picture.width).toBe(overview.columns);
    expect(busy()).toBe("false");
    const at = pointAt(host, 1000, 1000, n);
    wheel(host, at, -400, 3);
    await wait(100);
    const first = model.sent().slice(-1)[0];
    wheel(host, at, -400, 20); // zoomed on before the first region was answered
    await wait(100);
    const second = model.sent().slice(-1)[0];
    expect(second.q1 - second.q0).toBeLessThan(first.q1 - first.q0);
    expect([second.rows, second.columns]).toEqual([second.q1 - second.q0, second.k1 - second.k0]); // single cells
    const drawn = imageCount(host);
    reply(first, () => 0.02);
    await settle();
    expect(imageCount(host)).toBe(drawn);
    expect(busy()).toBe("true");
    reply(second, (i) => 1e-4 * (1 + i));
    await settle();
    expect(lastImage(host).picture.width).toBe(second.columns);
    expect(busy()).toBe("false");
    // A single cell of the tile reads out Python's float32 value to six digits.
    matrixCanvases(host).overlay.dispatchEvent(new MouseEvent("mousemove", at));
    const [q, k] = readoutText(host)!.match(/^query (\d+) .* key (\d+) /)!.slice(1).map(Number);
    const value = Math.fround(1e-4 * (1 + (q - second.q0) * second.columns + (k - second.k0)));
    expect(readoutText(host)).toBe(`query ${q} “w${q}” → key ${k} “w${k}”: ${value.toPrecision(6)} (${Math.round((100 * value) / 0.5)}% of the head's maximum past key 0)`);
  });

  it("pools a region of millions of cells from the head's bytes once the wheel pauses, stretching the overview until then", async () => {
    const tokens = Array.from({ length: 2100 }, (_, i) => `w${i}`);
    const host = mount(fakeModel({ tokens, layers: 1, heads: 1, thumbnails: false, traits: { view: "matrix" } }));
    const overview = lastImage(host).picture;
    wheel(host, pointAt(host, 1000, 1000, 2100), -120);
    expect(lastImage(host).picture).toBe(overview); // the step drew at once, from what was pooled
    expect(lastImage(host).source[2]).toBeLessThan(overview.width);
    await wait(100);
    const detail = lastImage(host);
    expect(detail.picture).not.toBe(overview);
    // The region's own grid, drawn from within its first pixel (the screen's edge may cut a cell).
    expect(detail.source.slice(0, 2).every((x) => x >= 0 && x < 1)).toBe(true);
  });

  it("shows the head's thumbnail, unzoomable, where the head's data cannot come, and says zooming needs it", async () => {
    const model = fakeModel({ preload: "none", traits: { view: "matrix" } });
    const host = mount(model);
    const [request] = model.sent();
    model.reply({ kind: "response", id: request.id, error: "this export leaves out the attention of head 0 of layer 0 (self)" });
    await settle();
    expect(host.querySelector(".aw-status")!.textContent).toBe(
      "Could not load head 0: this export leaves out the attention of head 0 of layer 0 (self). " +
        "Showing the head's 8 × 8 thumbnail; zooming needs the head's data.",
    );
    expect(lastImage(host).picture.width).toBe(8);
    expect(wheel(host, pointAt(host, 2, 2), -300).defaultPrevented).toBe(false);
  });
});

describe("label thinning", () => {
  it("labels every row when rows are tall enough, and every k-th when they are not", () => {
    expect(labelStep(20)).toBe(1);
    expect(labelStep(4)).toBe(4);
    expect(labelStep(0.25)).toBe(52);
  });
});
