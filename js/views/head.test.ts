import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { drawCalls, type DrawCall } from "../test/setup";
import { button, chooseOption, key, labelled, mouse, visible } from "../test/dom";
import { fakeModel, headBytes, offsetView } from "../test/fixtures";
import { topKeysOfChunk } from "../head/lines";
import { mount, settle, withLayoutWidth } from "../test/mount";
import { ROW_HEIGHT } from "./head";

/** What was drawn on `canvas` since it was last cleared. */
function sinceClear(canvas: HTMLCanvasElement): DrawCall[] {
  const calls: DrawCall[] = drawCalls.get(canvas) ?? [];
  return calls.slice(calls.map((c) => c[0]).lastIndexOf("clearRect"));
}

/** The head layers the lines canvas last composited, in order. */
function compositedLayers(host: HTMLElement): HTMLCanvasElement[] {
  const calls = sinceClear(host.querySelector<HTMLCanvasElement>(".aw-lines canvas")!);
  return calls.filter((c) => c[0] === "drawImage").map((c) => c[1] as HTMLCanvasElement);
}

/** The (query, key) pairs the head view drew lines for, read back from the line ends on the composited layers
 *  (a layer's top is the columns' top while the view is not scrolled). */
function drawnPairs(host: HTMLElement): Set<string> {
  const row = (y: unknown) => Math.round(((y as number) - ROW_HEIGHT / 2) / ROW_HEIGHT);
  const pairs = new Set<string>();
  for (const layer of compositedLayers(host)) {
    const calls = sinceClear(layer);
    calls.forEach((call, i) => {
      if (call[0] === "moveTo") pairs.add(`${row(call[2])}-${row(calls[i + 1][2])}`);
    });
  }
  return pairs;
}

/** The stroke colours the head view's composited layers drew their lines in. */
function lineColors(host: HTMLElement): unknown[] {
  return compositedLayers(host).flatMap((layer) => sinceClear(layer).filter((c) => c[0] === "set strokeStyle").map((c) => c[1]));
}

const queryToken = (host: HTMLElement, i: number) => host.querySelectorAll<HTMLButtonElement>(".aw-tokens--query .aw-tok")[i];
const rowIndices = (host: HTMLElement, side: "query" | "key") =>
  [...host.querySelectorAll<HTMLElement>(`.aw-tokens--${side} .aw-tok`)].map((row) => Number(row.dataset.index));
const longTokens = (n: number) => ["[CLS]", ...Array.from({ length: n - 2 }, (_, i) => `w${i}`), "[SEP]"];

/** Scroll the head view's token list as a user would: jsdom keeps no scroll position, so give it one. */
function scrollTo(host: HTMLElement, top: number): void {
  const scroller = host.querySelector<HTMLElement>(".aw-headview .aw-scroll")!;
  Object.defineProperty(scroller, "scrollTop", { configurable: true, get: () => top, set: () => {} });
  scroller.dispatchEvent(new Event("scroll"));
}

/** How many drawing calls each composited layer has had, in draw order. */
const layerWork = (host: HTMLElement) => compositedLayers(host).map((layer) => drawCalls.get(layer)?.length ?? 0);

describe("head view", () => {
  let restoreWidth: () => void;
  beforeEach(() => (restoreWidth = withLayoutWidth(300)));
  afterEach(() => restoreWidth());

  it("shows a clicked head alone and focused, and every head again from All", () => {
    const model = fakeModel({ heads: 3 });
    const host = mount(model);
    const all = button(host, "All");
    expect(all.disabled).toBe(true);
    button(host, "Head 1").click();
    expect(model.takeWrites()).toEqual({ writes: { heads: [1], head: 1 }, saves: 1 });
    expect(["Head 0", "Head 1", "Head 2"].map((name) => button(host, name).getAttribute("aria-pressed"))).toEqual(["false", "true", "false"]);
    // One head's lines instead of three heads'.
    expect(drawnPairs(host).size).toBe(8 * 8);
    expect(new Set(lineColors(host)).size).toBe(1);
    // A double-click (BertViz's "show alone") ends the same way.
    mouse(button(host, "Head 2"), "click");
    mouse(button(host, "Head 2"), "click");
    mouse(button(host, "Head 2"), "dblclick");
    expect([model.get("heads"), model.get("head")]).toEqual([[2], 2]);
    all.click();
    expect([model.get("heads"), model.get("head")]).toEqual([[0, 1, 2], 2]);
    expect(all.disabled).toBe(true);
  });

  it("shows or hides a head on shift-click or Space, BertViz's click", () => {
    const model = fakeModel({ heads: 3 });
    const host = mount(model);
    mouse(button(host, "Head 1"), "click", { shiftKey: true });
    expect(model.takeWrites()).toEqual({ writes: { heads: [0, 2], head: 1 }, saves: 1 });
    expect(button(host, "Head 1").getAttribute("aria-pressed")).toBe("false");
    expect(button(host, "All").disabled).toBe(false);
    button(host, "Head 1").focus();
    key(button(host, "Head 1"), " ");
    expect(model.get("heads")).toEqual([0, 1, 2]);
    expect(button(host, "Head 1").title).toMatch(/shift-click or Space to show or hide/);
    expect(host.querySelector(".aw-hint")!.textContent).toMatch(/click a head to show it alone, shift-click or Space to show or hide it/);
  });

  it("labels the query and key columns and the head chips", () => {
    const host = mount(fakeModel());
    const labels = [...host.querySelectorAll(".aw-col-label")].map((label) => label.textContent);
    expect(labels).toEqual(["query", "key"]);
    const pair = host.querySelector(".aw-pair")!;
    const [query, , key] = [...pair.children];
    expect([query.textContent, key.textContent]).toEqual(["query", "key"]);
    expect(host.querySelector(".aw-chips")!.firstElementChild!.textContent).toBe("Heads");
  });

  it("pins a token on click, unpins on a second click and on Escape", () => {
    const model = fakeModel();
    const host = mount(model);
    queryToken(host, 2).click();
    expect(model.get("token")).toBe(2);
    expect(queryToken(host, 2).getAttribute("aria-pressed")).toBe("true");
    queryToken(host, 2).click();
    expect(model.get("token")).toBeNull();
    queryToken(host, 3).click();
    key(queryToken(host, 3), "Escape");
    expect(model.get("token")).toBeNull();
    expect(model.takeWrites().saves).toBe(4);
  });

  it("moves the token with ↑/↓ and the focused head with ←/→, within range", () => {
    const model = fakeModel({ heads: 3 });
    const host = mount(model);
    const tokens = host.querySelector(".aw-tokens--query")!;
    key(tokens, "ArrowDown");
    expect(model.get("token")).toBe(0);
    key(queryToken(host, 0), "ArrowDown");
    key(queryToken(host, 1), "ArrowDown");
    expect(model.get("token")).toBe(2);
    expect(document.activeElement).toBe(queryToken(host, 2));
    key(queryToken(host, 2), "ArrowUp");
    expect(model.get("token")).toBe(1);
    key(tokens, "ArrowRight");
    key(tokens, "ArrowRight");
    key(tokens, "ArrowRight");
    expect(model.get("head")).toBe(2);
    key(tokens, "ArrowLeft");
    expect(model.get("head")).toBe(1);
  });

  it("moves keyboard focus along the head chips with ←/→", () => {
    const model = fakeModel({ heads: 3 });
    const host = mount(model);
    button(host, "Head 0").focus();
    key(button(host, "Head 0"), "ArrowRight");
    expect(model.get("head")).toBe(1);
    expect(document.activeElement).toBe(button(host, "Head 1"));
  });

  it("follows Python: a new layer shows in the Layer select and is drawn", async () => {
    const model = fakeModel({ layers: 4 });
    const host = mount(model);
    const layer = labelled(host, "Layer");
    expect([...layer.options].map((o) => o.text)).toEqual(["0", "1", "2", "3"]);
    model.fromPython({ layer: 3 });
    expect(layer.value).toBe("3");
    model.fromPython({ token: 1 });
    expect(queryToken(host, 1).getAttribute("aria-pressed")).toBe("true");
    chooseOption(layer, "2");
    expect(model.get("layer")).toBe(2);
  });

  it("keeps token text as text, never markup", () => {
    const evil = "<img src=x onerror=alert(1)>";
    const model = fakeModel({ tokens: ["[CLS]", evil, "&amp;", "[SEP]"] });
    const host = mount(model);
    expect(queryToken(host, 1).textContent).toBe(evil);
    expect(queryToken(host, 2).textContent).toBe("&amp;");
    expect(host.querySelector("img")).toBeNull();
    expect(host.querySelectorAll(".aw-tokens--key .aw-tok")[1].textContent).toBe(evil);
  });

  it("draws every visible head's lines, and only the hovered token's on hover", () => {
    const model = fakeModel({ heads: 2 });
    const host = mount(model);
    expect(drawnPairs(host).size).toBe(64);
    mouse(queryToken(host, 3), "mouseover");
    expect([...drawnPairs(host)].every((pair) => pair.startsWith("3-"))).toBe(true);
    mouse(host.querySelector(".aw-tokens--query")!, "mouseleave");
    expect(drawnPairs(host).size).toBe(64);
  });

  it("offers the pair filter for sentence pairs and draws only the chosen pairs", () => {
    const model = fakeModel({ segmentB: 5 });
    const host = mount(model);
    const filter = labelled(host, "Pair filter");
    expect(visible(filter)).toBe(true);
    expect([...filter.options].map((o) => o.text)).toEqual(["All", "A→A", "A→B", "B→A", "B→B"]);
    chooseOption(filter, "AB");
    expect(model.get("pair_filter")).toBe("AB");
    const pairs = [...drawnPairs(host)].map((p) => p.split("-").map(Number));
    expect(pairs.length).toBe(5 * 3);
    expect(pairs.every(([q, k]) => q < 5 && k >= 5)).toBe(true);
  });

  it("hides the pair filter for a single sentence", () => {
    const host = mount(fakeModel({ segmentB: null }));
    expect(visible(labelled(host, "Pair filter"))).toBe(false);
  });

  it("shows the stack select only when there are several stacks", () => {
    const single = mount(fakeModel());
    expect(visible(labelled(single, "Attention"))).toBe(false);
    const model = fakeModel({ encoderDecoder: { decoderTokens: ["<s>", "le", "chat"] } });
    const host = mount(model);
    const stack = labelled(host, "Attention");
    expect(visible(stack)).toBe(true);
    expect([...stack.options].map((o) => o.text)).toEqual(["Encoder", "Decoder", "Cross"]);
    chooseOption(stack, "cross");
    expect(model.get("stack")).toBe("cross");
    expect([...host.querySelectorAll(".aw-tokens--query .aw-tok")].map((t) => t.textContent)).toEqual(["<s>", "le", "chat"]);
    expect(host.querySelectorAll(".aw-tokens--key .aw-tok")).toHaveLength(8);
  });

  it("keeps only the token rows in view in the DOM, and others come in as the list scrolls", () => {
    const model = fakeModel({ tokens: longTokens(600), heads: 2, layers: 1, thumbnails: false });
    const host = mount(model);
    // Unlaid-out, the view counts as 600 px: 30 rows, and a margin of 12 below.
    expect(rowIndices(host, "query")).toEqual([...Array(42).keys()]);
    expect(rowIndices(host, "key")).toHaveLength(42);
    scrollTo(host, 5000);
    const rows = rowIndices(host, "query");
    expect(rows[0]).toBe(250 - 12);
    expect(rows[rows.length - 1]).toBe(250 + 30 + 12 - 1);
    expect(queryToken(host, 0).style.top).toBe(`${rows[0] * ROW_HEIGHT}px`);
    // A click on a row that came in pins it.
    host.querySelector<HTMLButtonElement>('.aw-tokens--query .aw-tok[data-index="260"]')!.click();
    expect(model.get("token")).toBe(260);
  });

  it("only moves the layers while the list scrolls, and paints the new rows' lines once it pauses", async () => {
    const model = fakeModel({ tokens: longTokens(600), heads: 2, layers: 1, thumbnails: false });
    const host = mount(model);
    expect(compositedLayers(host)).toHaveLength(2);
    const painted = compositedLayers(host).map((layer) => drawCalls.get(layer)!.length);
    scrollTo(host, 5000); // far past the rows the layers were painted for
    expect(compositedLayers(host)).toHaveLength(0);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await new Promise((resolve) => requestAnimationFrame(resolve));
    const layers = compositedLayers(host);
    expect(layers).toHaveLength(2);
    expect(layers.map((layer) => drawCalls.get(layer)!.length)).not.toEqual(painted);
    expect(drawnPairs(host).size).toBeGreaterThan(0);
  });

  it("puts a token Python pins far down the list into the DOM, pressed, and ↓ moves on from it", () => {
    const model = fakeModel({ tokens: longTokens(600), heads: 2, layers: 1, thumbnails: false });
    const host = mount(model);
    model.fromPython({ token: 480 });
    const pinned = host.querySelector<HTMLButtonElement>('.aw-tokens--query .aw-tok[data-index="480"]')!;
    expect(pinned.getAttribute("aria-pressed")).toBe("true");
    key(pinned, "ArrowDown");
    expect(model.get("token")).toBe(481);
    expect(document.activeElement).toBe(host.querySelector('.aw-tokens--query .aw-tok[data-index="481"]'));
  });

  it("starts a long input on top-k lines and a sentence on a threshold", () => {
    const long = mount(fakeModel({ tokens: longTokens(200), heads: 1, layers: 1, thumbnails: false }));
    expect(labelled(long, "Lines").value).toBe("top:4");
    expect(labelled(mount(fakeModel()), "Lines").value).toBe("min:1"); // BertViz's picture
  });

  it("draws as many lines as the Lines control says", () => {
    // 40 tokens: each row has its peak and 1/255 on every other key, under the 1% threshold.
    const host = mount(fakeModel({ tokens: longTokens(40), heads: 1, layers: 1 }));
    const lines = labelled(host, "Lines");
    expect(drawnPairs(host).size).toBe(40);
    chooseOption(lines, "top:4");
    expect(drawnPairs(host).size).toBe(40 * 4);
    chooseOption(lines, "top:1");
    const peaks = [...drawnPairs(host)];
    expect(peaks).toEqual([...Array(40).keys()].map((q) => `${q}-${q}`));
    chooseOption(lines, "min:25");
    expect([...drawnPairs(host)]).toEqual(peaks);
  });

  it("repaints no layer on a head switch, and only the two focused heads' with a token pinned", () => {
    const model = fakeModel({ heads: 4 });
    const host = mount(model);
    const before = layerWork(host);
    key(queryToken(host, 0), "ArrowRight");
    expect(model.get("head")).toBe(1);
    // The same four layers, the new focused head now on top, none repainted.
    expect(compositedLayers(host)).toHaveLength(4);
    expect(layerWork(host).sort()).toEqual(before.sort());
    queryToken(host, 2).click();
    const layers = compositedLayers(host);
    const pinned = layerWork(host);
    key(queryToken(host, 2), "ArrowRight");
    expect(model.get("head")).toBe(2);
    const repainted = layers.filter((layer, i) => drawCalls.get(layer)!.length !== pinned[i]);
    expect(repainted).toHaveLength(2);
    // Hovering another token repaints each head's few lines.
    mouse(queryToken(host, 5), "mouseover");
    expect([...drawnPairs(host)].every((pair) => pair.startsWith("5-"))).toBe(true);
  });

  it("asks Python for each visible head's top keys when its chunk is not here, and draws them", async () => {
    const tokens = longTokens(300);
    const model = fakeModel({ tokens, heads: 2, layers: 1, preload: "none", thumbnails: false });
    const host = mount(model);
    const asked = model.sent();
    expect(asked.map((r) => [r.what, r.head, r.k])).toEqual([["top_keys", 0, 32], ["top_keys", 1, 32]]);
    for (const request of asked) {
      const top = topKeysOfChunk(headBytes(0, request.head, 300, 300), 300, 300, 32);
      const bytes = new Uint8Array(top.keys.byteLength + top.weights.byteLength);
      bytes.set(new Uint8Array(top.keys.buffer), 0);
      bytes.set(top.weights, top.keys.byteLength);
      model.reply({ kind: "response", id: request.id, what: "top_keys", stack: "self", layer: 0, head: request.head, k: 32 }, [offsetView(bytes)]);
    }
    await settle();
    expect(host.querySelector(".aw-status")!.textContent).toBe("");
    const pairs = [...drawnPairs(host)].map((pair) => pair.split("-").map(Number));
    // Each head's strongest key of query q is (q + head) mod 300 in the fixture.
    expect(pairs.some(([q, k]) => k === (q + 1) % 300)).toBe(true);
    expect(pairs.some(([q, k]) => k === q)).toBe(true);
    chooseOption(labelled(host, "Lines"), "min:1");
    expect(host.querySelector(".aw-status")!.textContent).toMatch(/Threshold among each query's 32 strongest keys/);
    expect(model.sent()).toHaveLength(2); // the control never asks again
  });

  it("says nothing of a threshold when the top keys hold every key of a short input", async () => {
    const model = fakeModel({ heads: 1, layers: 1, preload: "none" });
    const host = mount(model);
    const [request] = model.sent();
    const top = topKeysOfChunk(headBytes(0, 0, 8, 8), 8, 8, 8);
    const bytes = new Uint8Array([...new Uint8Array(top.keys.buffer), ...top.weights]);
    model.reply({ kind: "response", id: request.id, what: "top_keys", stack: "self", layer: 0, head: 0, k: 8 }, [bytes]);
    await settle();
    expect(labelled(host, "Lines").value).toBe("min:1");
    expect(host.querySelector(".aw-status")!.textContent).toBe("");
    expect(drawnPairs(host).size).toBe(8 * 8);
  });

  it("says it is loading until a requested layer arrives", async () => {
    const model = fakeModel({ preload: "none" });
    const host = mount(model);
    expect(host.querySelector(".aw-status")!.textContent).toMatch(/Loading layer 0/);
    const { id } = model.sent()[0];
    model.reply({ kind: "response", id, error: "kernel restarted" });
    await settle();
    expect(host.querySelector(".aw-status")!.textContent).toMatch(/Could not load layer 0: kernel restarted/);
  });
});
