import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { button, chooseOption, labelled } from "../test/dom";
import { fakeModel, longNeuronModel } from "../test/fixtures";
import { FakeModel } from "../test/fake-model";
import { goldenTraits } from "../test/golden";
import { mount, settle, withLayoutWidth } from "../test/mount";
import type { Selection } from "../selection";
import { blobBytes, makeImage } from "./save";
import { escapeXml, SvgPainter } from "./svg";

const blobText = async (blob: Blob) => new TextDecoder().decode(await blobBytes(blob));

const HOSTILE = ["[CLS]", "a&b", "<script>", 'say "hi"', "it's", "nul\u0000x", "lone\uD800", "ok\uD83D\uDE00", "[SEP]"];

function parseSvg(text: string): Document {
  const doc = new DOMParser().parseFromString(text, "image/svg+xml");
  const error = doc.querySelector("parsererror");
  if (error) throw new Error(`not well-formed XML: ${error.textContent}`);
  return doc;
}

describe("escapeXml", () => {
  it("escapes markup and quotes, and replaces what XML 1.0 forbids", () => {
    expect(escapeXml(`<a href="x">&'`)).toBe("&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    expect(escapeXml("nul\u0000 bell\u0007 tab\t")).toBe("nul\uFFFD bell\uFFFD tab\t");
    expect(escapeXml("lone\uD800 end\uDC00")).toBe("lone\uFFFD end\uFFFD");
    expect(escapeXml("emoji \uD83D\uDE00")).toBe("emoji \uD83D\uDE00");
  });
});

describe("SvgPainter", () => {
  it("writes strokes as paths and text as <text>, under the current transform", () => {
    const g = new SvgPainter(100, 50);
    g.strokeStyle = "rgb(10, 20, 30)";
    g.globalAlpha = 0.5;
    g.beginPath();
    g.moveTo(1, 2);
    g.lineTo(30.456, 40);
    g.stroke();
    g.globalAlpha = 1;
    g.save();
    g.translate(10, 20);
    g.rotate(-Math.PI / 2);
    g.font = "bold 11px system-ui, 'Segoe UI'";
    g.textAlign = "right";
    g.fillText("a<b", 0, 0);
    g.restore();
    g.fillText("after", 5, 5);
    const doc = parseSvg(g.toString("a picture"));
    const svg = doc.documentElement;
    expect([svg.getAttribute("width"), svg.getAttribute("height"), svg.getAttribute("viewBox")]).toEqual(["100", "50", "0 0 100 50"]);
    expect(doc.querySelector("desc")!.textContent).toBe("a picture");
    const path = doc.querySelector("path")!;
    expect(path.getAttribute("d")).toBe("M1 2L30.46 40");
    expect(path.getAttribute("stroke-opacity")).toBe("0.5");
    const [rotated, plain] = [...doc.querySelectorAll("text")];
    expect(rotated.textContent).toBe("a<b");
    expect(rotated.getAttribute("text-anchor")).toBe("end");
    expect(rotated.getAttribute("font-weight")).toBe("bold");
    expect(rotated.parentElement!.getAttribute("transform")).toMatch(/^matrix\(0 -1 1 0 10 20\)$/);
    // restore() brought back the identity transform and left alignment.
    expect(plain.parentElement!.tagName).toBe("svg");
    expect(plain.hasAttribute("text-anchor")).toBe(false);
  });

  it("squeezes text wider than maxWidth, as the canvas does", () => {
    const g = new SvgPainter(10, 10);
    g.fillText("a very long token", 0, 0, 20);
    g.fillText("ab", 0, 0, 200);
    const [long, short] = [...parseSvg(g.toString()).querySelectorAll("text")];
    expect(long.getAttribute("textLength")).toBe("20");
    expect(short.hasAttribute("textLength")).toBe(false);
  });
});

/** Click a save button and return what was downloaded. */
async function clickSave(host: HTMLElement, label: string): Promise<{ name: string; blob: Blob }> {
  const saved: { name: string; blob: Blob }[] = [];
  let blob: Blob | null = null;
  URL.createObjectURL = (value: Blob | MediaSource) => {
    blob = value as Blob;
    return "blob:test";
  };
  URL.revokeObjectURL = () => {};
  const click = vi.spyOn(HTMLAnchorElement.prototype, "click").mockImplementation(function (this: HTMLAnchorElement) {
    saved.push({ name: this.download, blob: blob! });
  });
  button(host, label).click();
  for (let i = 0; i < 50 && saved.length === 0; i++) await settle();
  click.mockRestore();
  if (saved.length !== 1) throw new Error(`expected one download, got ${saved.length}: ${host.querySelector(".aw-save-status")?.textContent}`);
  return saved[0];
}

describe("saving the current view", () => {
  let restoreWidth: () => void;
  const toDataURL = HTMLCanvasElement.prototype.toDataURL;
  beforeEach(() => {
    restoreWidth = withLayoutWidth(300);
    // jsdom cannot encode canvases, nor read their pixels: every image goes in as a (stand-in) PNG.
    HTMLCanvasElement.prototype.toDataURL = () => "data:image/png;base64,iVBORw0KGgo=";
  });
  afterEach(() => {
    restoreWidth();
    HTMLCanvasElement.prototype.toDataURL = toDataURL;
  });

  it("downloads an SVG of the head view with the selection in its caption and every token as text", async () => {
    const model = fakeModel({ tokens: HOSTILE, layers: 3, heads: 4, traits: { layer: 2, head: 1, heads: [1, 3], token: 3 } });
    const host = mount(model);
    const { name, blob } = await clickSave(host, "Save SVG");
    expect(name).toBe("attnwidget-head-layer2-head1.svg");
    expect(blob.type).toBe("image/svg+xml");
    const doc = parseSvg(await blobText(blob));
    const texts = [...doc.querySelectorAll("text")].map((t) => t.textContent);
    expect(texts[0]).toBe(`Head view · layer 2 · heads 1, 3 · head 1 in front · token 3 “say "hi"”`);
    const cleaned = HOSTILE.map((t) => t.replace("\u0000", "\uFFFD").replace("\uD800", "\uFFFD"));
    // Each token twice (query and key column), the pinned one among them.
    for (const token of cleaned) expect(texts.filter((t) => t === token)).toHaveLength(2);
    expect(doc.querySelectorAll("script")).toHaveLength(0);
    // Lines of the two visible heads only, from the pinned token's row.
    const paths = [...doc.querySelectorAll("path")];
    expect(new Set(paths.map((p) => p.getAttribute("stroke"))).size).toBe(2);
    const svg = doc.documentElement;
    expect(Number(svg.getAttribute("width"))).toBeGreaterThan(300);
    expect(Number(svg.getAttribute("height"))).toBeGreaterThan(HOSTILE.length * 20);
  });

  it("names the view, layer and head in the file name and caption of every view", async () => {
    const model = fakeModel({ layers: 3, heads: 4, traits: { view: "matrix", layer: 1, head: 2, token: 4 } });
    const host = mount(model);
    let saved = await clickSave(host, "Save SVG");
    expect(saved.name).toBe("attnwidget-matrix-layer1-head2.svg");
    let doc = parseSvg(await blobText(saved.blob));
    expect(doc.querySelector("text")!.textContent).toBe("Matrix view · layer 1 · head 2 · token 4 “[SEP]”");
    model.fromPython({ view: "model" });
    await settle();
    saved = await clickSave(host, "Save SVG");
    expect(saved.name).toBe("attnwidget-model-layer1-head2.svg");
    doc = parseSvg(await blobText(saved.blob));
    expect(doc.querySelector("text")!.textContent).toBe("Model view · layer 1 · head 2 selected");
    expect([...doc.querySelectorAll("text")].map((t) => t.textContent)).toContain("Layer 2");
    // 3 layers × 4 heads of thumbnails, embedded, and the description says so.
    expect(doc.querySelectorAll("image")).toHaveLength(12);
    expect(doc.querySelector("image")!.getAttribute("href")).toMatch(/^data:image\/png;base64,/);
    expect(doc.querySelector("desc")!.textContent).toContain("12 raster image(s)");
  });

  it("names layers by the model's own numbers where a hybrid model attends in some layers only", async () => {
    const model = fakeModel({ layers: 3, layerNumbers: [1, 4, 7], heads: 2, traits: { view: "model", layer: 1 } });
    const host = mount(model);
    const select = labelled(host, "Layer");
    expect([...select.options].map((o) => [o.value, o.textContent])).toEqual([["0", "1"], ["1", "4"], ["2", "7"]]);
    expect(select.value).toBe("1");
    const rows = [...host.querySelectorAll(".aw-mrow[data-layer] .aw-mlabel")].map((l) => l.firstChild?.textContent);
    expect(rows).toEqual(["Layer 1", "Layer 4", "Layer 7"]);
    const saved = await clickSave(host, "Save SVG");
    expect(saved.name).toBe("attnwidget-model-layer4-head0.svg");
    const doc = parseSvg(await blobText(saved.blob));
    expect(doc.querySelector("text")!.textContent).toBe("Model view · layer 4 · head 0 selected");
    expect([...doc.querySelectorAll("text")].map((t) => t.textContent)).toEqual(expect.arrayContaining(["Layer 1", "Layer 7"]));
    button(host, "Layer 7 Head 1").click();
    expect(model.takeWrites().writes).toMatchObject({ layer: 2, head: 1 }); // the trait stays the index
  });

  it("pictures every row of the model view from the thumbnails, asking Python for nothing", async () => {
    const model = fakeModel({ layers: 3, heads: 2, preload: "none", traits: { view: "model" } });
    const host = mount(model);
    const doc = parseSvg(await blobText((await clickSave(host, "Save SVG")).blob));
    expect(doc.querySelectorAll("image")).toHaveLength(3 * 2);
    expect(model.sent()).toHaveLength(0);
  });

  it("keeps the theme, the pair filter and the stack in the picture", async () => {
    const model = fakeModel({ layers: 2, heads: 3, traits: { theme: "dark", pair_filter: "AB", heads: [0], head: 0 } });
    const host = mount(model);
    let doc = parseSvg(await blobText((await clickSave(host, "Save SVG")).blob));
    const background = doc.querySelector("rect")!;
    expect([background.getAttribute("width"), background.getAttribute("fill")]).toEqual([doc.documentElement.getAttribute("width"), "rgb(30, 32, 36)"]);
    expect(doc.querySelector("text")!.textContent).toBe("Head view · layer 0 · head 0 · pairs A→B");
    // Only lines from sentence A (tokens 0-4) to sentence B (5-7) are drawn.
    for (const path of doc.querySelectorAll("path")) {
      for (const [, y0, y1] of path.getAttribute("d")!.matchAll(/M[\d.]+ ([\d.]+)L[\d.]+ ([\d.]+)/g)) {
        expect(Number(y0)).toBeLessThan(5 * 20);
        expect(Number(y1)).toBeGreaterThan(5 * 20);
      }
    }

    const seq2seq = fakeModel({ encoderDecoder: { decoderTokens: ["<s>", "le", "chat"] }, traits: { stack: "cross", view: "matrix", layer: 1 } });
    const saved = await clickSave(mount(seq2seq), "Save SVG");
    expect(saved.name).toBe("attnwidget-matrix-cross-layer1-head0.svg");
    doc = parseSvg(await blobText(saved.blob));
    expect(doc.querySelector("text")!.textContent).toBe("Matrix view · cross attention · layer 1 · head 0");
  });

  it("cuts a very long token with an ellipsis, as the page does, in the head, matrix and neuron pictures", async () => {
    const long = "x".repeat(100_000);
    const tokens = ["[CLS]", "a", long, "b", "[SEP]"];
    const cut = (texts: (string | null)[]) => texts.filter((t) => t !== null && t.startsWith("xxx"));
    const check = async (model: FakeModel, maxWidth: number) => {
      const doc = parseSvg(await blobText((await clickSave(mount(model), "Save SVG")).blob));
      const svg = doc.documentElement;
      expect(Number(svg.getAttribute("width"))).toBeLessThan(maxWidth);
      const texts = [...doc.querySelectorAll("text")].map((t) => t.textContent);
      expect(texts[0]).toMatch(/token 2 “x+…”$/);
      const labels = cut(texts);
      expect(labels.length).toBeGreaterThan(0);
      for (const label of labels) expect(label!.length).toBeLessThan(40);
      expect(labels.every((label) => label!.endsWith("…"))).toBe(true);
    };
    await check(fakeModel({ tokens, traits: { token: 2 } }), 900);
    await check(fakeModel({ tokens, traits: { token: 2, view: "matrix" } }), 900);
    // The neuron view on the golden record, with one of its tokens made very long.
    const traits = goldenTraits({ view: "neuron", token: 2 });
    const input = traits.meta.sides.input;
    const sides = { input: { ...input, tokens: input.tokens.map((t, i) => (i === 2 ? long : t)) } };
    const meta = { ...traits.meta, query_key: { available: true, complete: true }, sides };
    await check(new FakeModel({ ...traits, meta }), 1400);
  });

  it("pictures the neuron view's default query token and names it in the caption", async () => {
    const traits = goldenTraits({ view: "neuron", token: null });
    const model = new FakeModel({ ...traits, meta: { ...traits.meta, query_key: { available: true, complete: true } } });
    const doc = parseSvg(await blobText((await clickSave(mount(model), "Save SVG")).blob));
    const first = traits.meta.sides.input.special.indexOf(false);
    expect(doc.querySelector("text")!.textContent).toMatch(new RegExp(`· query token ${first} “${traits.meta.sides.input.tokens[first]}”$`));
    expect(model.get("token")).toBeNull();
  });

  it("pictures a 4096-key head of the neuron view within a canvas's limits, and says which keys it leaves out", async () => {
    const n = 4096;
    const host = mount(longNeuronModel(n));
    host.querySelector<HTMLElement>("[data-index='0']")!.click(); // the query; key k weighs more the larger k is
    const saved = await clickSave(host, "Save SVG");
    const svg = parseSvg(await blobText(saved.blob)).documentElement;
    // At 2 pixels per CSS pixel, as a PNG is saved, and under the 16,384 px a canvas side may be.
    expect(2 * Number(svg.getAttribute("height"))).toBeLessThanOrEqual(16384);
    const texts = [...svg.querySelectorAll("text")].map((t) => t.textContent ?? "");
    const keys = texts.filter((t) => /^t\d+$/.test(t) && t !== "t0").map((t) => Number(t.slice(1))); // t0: the query
    // The keys that take the most weight: the last ones; what is left out is said, with the weight it takes.
    expect(keys.length).toBeGreaterThan(10);
    expect(keys.length).toBeLessThanOrEqual(64);
    expect(Math.min(...keys)).toBeGreaterThan(n - 100);
    expect(texts).toContain(`… ${Math.min(...keys)} keys`);
    const summary = texts.find((t) => t.includes("keys, those with the most weight"))!;
    expect(summary).toMatch(new RegExp(`^${keys.length} of ${n} keys, those with the most weight; the other ${n - keys.length} take 0\\.\\d+ together$`));
  });

  it("pictures the matrix on the chosen colour scale, with a legend that names it", async () => {
    const host = mount(fakeModel({ traits: { view: "matrix" } }));
    let doc = parseSvg(await blobText((await clickSave(host, "Save SVG")).blob));
    const texts = () => [...doc.querySelectorAll("text")].map((t) => t.textContent);
    expect(texts()).toContain("1  attention, square root scale");
    chooseOption(labelled(host, "Full colour at"), "row");
    chooseOption(labelled(host, "Curve"), "log");
    doc = parseSvg(await blobText((await clickSave(host, "Save SVG")).blob));
    expect(texts()).toContain("row max  attention, log scale (3 decades)");
  });

  it("pictures the zoomed matrix as it is on screen: the rows and columns in view, not the whole map", async () => {
    const tokens = Array.from({ length: 64 }, (_, i) => `t${i}`);
    const host = mount(fakeModel({ tokens, traits: { view: "matrix" } }));
    const texts = async () => [...parseSvg(await blobText((await clickSave(host, "Save SVG")).blob)).querySelectorAll("text")].map((t) => t.textContent);
    expect(await texts()).toContain("t0");
    const overlay = host.querySelectorAll<HTMLCanvasElement>(".aw-matrix canvas")[1];
    for (let i = 0; i < 10; i++) overlay.dispatchEvent(new WheelEvent("wheel", { clientX: 250, clientY: 250, deltaY: -300, cancelable: true }));
    const zoomed = await texts();
    expect(zoomed).not.toContain("t0");
    expect(zoomed.filter((t) => /^t\d+$/.test(t ?? "")).length).toBeGreaterThan(4);
  });

  it("answers Python's image request with the picture as one buffer, and an error when there is nothing to draw", async () => {
    const model = fakeModel({ layers: 2, heads: 3, traits: { layer: 1, head: 0 } });
    const send = vi.spyOn(model, "send");
    mount(model);
    model.reply({ kind: "image_request", id: 41, format: "svg" });
    for (let i = 0; i < 5 && send.mock.calls.length === 0; i++) await settle();
    const [content, , buffers] = send.mock.calls[0] as unknown as [Record<string, unknown>, unknown, ArrayBuffer[]];
    expect(content).toMatchObject({ kind: "image", id: 41, format: "svg", file_name: "attnwidget-head-layer1-head0.svg" });
    expect(content.width).toBeGreaterThan(0);
    const text = new TextDecoder().decode(buffers[0]);
    expect(parseSvg(text).querySelector("text")!.textContent).toContain("layer 1");

    // The neuron view without queries and keys has nothing to show.
    model.fromPython({ view: "neuron" });
    send.mockClear();
    model.reply({ kind: "image_request", id: 42, format: "png" });
    for (let i = 0; i < 5 && send.mock.calls.length === 0; i++) await settle();
    expect(send.mock.calls[0][0]).toMatchObject({ kind: "image", id: 42, format: "png", error: expect.stringContaining("neuron view has nothing drawn") });
  });

  it("refuses to make a 0 × 0 picture, in either format, and says the view drew nothing", async () => {
    const selection = { view: "matrix" } as unknown as Selection;
    const empty = { width: 0, height: 0, paint: () => {} };
    for (const format of ["png", "svg"] as const) {
      await expect(makeImage(selection, empty, false, format)).rejects.toThrow("the matrix view drew an empty picture (0 × 0 px)");
    }
  });
});
