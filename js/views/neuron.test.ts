import { describe, expect, it } from "vitest";
import type { Binary, Meta, Traits } from "../contract";
import { button, key, mouse } from "../test/dom";
import { buildFixture, offsetView, type FixtureOptions } from "../test/fixtures";
import { FakeModel } from "../test/fake-model";
import { mount, settle } from "../test/mount";
import { NEURON_ROW, headList, sharingCaption } from "./neuron";

// -- a query-key record built here the way wire.query_key_record builds it ----------------

/** float16 bits of a value that float16 holds exactly (the test values are multiples of 1/8). */
function toHalf(value: number): number {
  if (value === 0) return 0;
  const exponent = Math.floor(Math.log2(Math.abs(value)));
  const fraction = (Math.abs(value) / 2 ** exponent - 1) * 1024;
  if (!Number.isInteger(fraction)) throw new Error(`${value} is not exact in float16`);
  return (value < 0 ? 0x8000 : 0) | ((exponent + 15) << 10) | fraction;
}

interface Synthetic {
  heads: number;
  kvHeadOf: number[];
  nQuery: number;
  nKey: number;
  dim: number;
  scale: number;
  bias?: { shape: [number, number, number]; at(h: number, q: number, k: number): number };
}

const queryValue = (h: number, q: number, d: number) => (((h + 2 * q + d) % 5) - 2) / 2;
const keyValue = (kv: number, k: number, d: number) => (((3 * kv + 3 * k + d) % 7) - 3) / 4;

/** float32 scores as Python computes them. */
function score(s: Synthetic, h: number, q: number, k: number): number {
  let sum = 0;
  for (let d = 0; d < s.dim; d++) sum += queryValue(h, q, d) * keyValue(s.kvHeadOf[h], k, d);
  return Math.fround(sum * s.scale);
}

function record(s: Synthetic): Uint8Array {
  const kvHeads = Math.max(...s.kvHeadOf) + 1;
  const arrays: { name: string; dtype: string; shape: number[]; data: Uint8Array }[] = [];
  const half = (shape: number[], value: (i: number, j: number, d: number) => number) => {
    const [a, b, c] = shape;
    const bits = new Uint16Array(a * b * c);
    for (let i = 0; i < a; i++) for (let j = 0; j < b; j++) for (let d = 0; d < c; d++) bits[(i * b + j) * c + d] = toHalf(value(i, j, d));
    return new Uint8Array(bits.buffer);
  };
  const single = (shape: number[], value: (i: number, j: number, k: number) => number) => {
    const [a, b, c] = shape;
    const floats = new Float32Array(a * b * c);
    for (let i = 0; i < a; i++) for (let j = 0; j < b; j++) for (let k = 0; k < c; k++) floats[(i * b + j) * c + k] = value(i, j, k);
    return new Uint8Array(floats.buffer);
  };
  arrays.push({ name: "query", dtype: "float16", shape: [s.heads, s.nQuery, s.dim], data: half([s.heads, s.nQuery, s.dim], queryValue) });
  arrays.push({ name: "key", dtype: "float16", shape: [kvHeads, s.nKey, s.dim], data: half([kvHeads, s.nKey, s.dim], keyValue) });
  arrays.push({ name: "scores", dtype: "float32", shape: [s.heads, s.nQuery, s.nKey], data: single([s.heads, s.nQuery, s.nKey], (h, q, k) => score(s, h, q, k)) });
  if (s.bias) arrays.push({ name: "bias", dtype: "float32", shape: s.bias.shape, data: single(s.bias.shape, s.bias.at) });
  let offset = 0;
  const layout = arrays.map(({ name, dtype, shape, data }) => {
    const entry = { name, dtype, shape, offset };
    offset += Math.ceil(data.length / 8) * 8;
    return entry;
  });
  const header = new TextEncoder().encode(JSON.stringify({ scale: s.scale, arrays: layout }));
  const start = Math.ceil((4 + header.length) / 8) * 8;
  const bytes = new Uint8Array(start + offset);
  new DataView(bytes.buffer).setUint32(0, header.length, true);
  bytes.set(header, 4);
  arrays.forEach(({ data }, i) => bytes.set(data, start + layout[i].offset));
  return bytes;
}

/** The softmax the view must show, computed plainly. */
function expectedSoftmax(s: Synthetic, h: number, q: number): number[] {
  const logits = Array.from({ length: s.nKey }, (_, k) => score(s, h, q, k) + (s.bias?.at(0, q, k) ?? 0));
  const top = Math.max(...logits);
  const weights = logits.map((l) => Math.exp(l - top));
  const total = weights.reduce((a, b) => a + b, 0);
  return weights.map((w) => w / total);
}

const CAUSAL = (n: number) => ({ shape: [1, n, n] as [number, number, number], at: (_h: number, q: number, k: number) => (k > q ? -Infinity : 0) });

function neuronModel(options: FixtureOptions & { synthetic?: Partial<Synthetic>; preload?: "all" | "none"; available?: boolean } = {}) {
  const fixture = buildFixture({ ...options, traits: { view: "neuron", token: 2, ...options.traits } });
  const heads = options.heads ?? 3;
  const stack = fixture.meta.stacks[0];
  const n = fixture.meta.sides[stack.query_side].tokens.length;
  const synthetic: Synthetic = { heads, kvHeadOf: [...Array(heads).keys()], nQuery: n, nKey: n, dim: 4, scale: 0.5, ...options.synthetic };
  fixture.meta.stacks.forEach((s) => (s.kv_head_of = synthetic.kvHeadOf));
  const preloaded = options.preload !== "none";
  const meta: Meta = { ...fixture.meta, query_key: { available: options.available ?? true, complete: preloaded } };
  const qk: Record<string, Binary> = {};
  if (preloaded && (options.available ?? true)) {
    for (let l = 0; l < (options.layers ?? 2); l++) qk[`${stack.name}/${l}`] = offsetView(record(synthetic), 3);
  }
  const traits: Traits = { ...fixture.traits, meta, _qk: qk };
  return { model: new FakeModel(traits), synthetic };
}

const rowsOf = (host: HTMLElement) => [...host.querySelectorAll<HTMLElement>(".aw-neuron-rows .aw-nrow")];
const status = (host: HTMLElement) => host.querySelector(".aw-neuronview [role=status]")!.textContent;

/** A shown number equals `value` to the three significant digits shown. */
function expectShown(text: string | undefined, value: number): void {
  const digit = 10 ** (Math.floor(Math.log10(Math.abs(value))) - 2);
  expect(Math.abs(Number(text) - value)).toBeLessThanOrEqual(digit / 2 + 1e-12);
}

describe("neuron view", () => {
  it("shows for each key the capture's score and softmax, to the digits shown", () => {
    const { model, synthetic } = neuronModel({ traits: { head: 1 } });
    const host = mount(model);

    const rows = rowsOf(host);
    expect(rows).toHaveLength(8);
    const softmax = expectedSoftmax(synthetic, 1, 2);
    rows.forEach((row, k) => {
      expect(row.dataset.key).toBe(String(k));
      expect(row.dataset.score).toBe(score(synthetic, 1, 2, k).toPrecision(3));
      expectShown(row.dataset.softmax, softmax[k]);
      expect(row.querySelector(".aw-nvalue")!.textContent).toBe(row.dataset.softmax);
    });
    expect(rows.reduce((sum, row) => sum + Number(row.dataset.softmax), 0)).toBeCloseTo(1, 2);
    expect(host.querySelector(".aw-neuron-query")!.textContent).toBe("cat");
    expect(status(host)).toBe("");
  });

  it("greys out and labels the keys a causal mask hides, with no bias column for a pure mask", () => {
    const { model, synthetic } = neuronModel({ synthetic: { bias: CAUSAL(8) }, traits: { token: 3 } });
    const host = mount(model);

    const rows = rowsOf(host);
    const softmax = expectedSoftmax(synthetic, 0, 3);
    rows.forEach((row, k) => {
      const masked = k > 3;
      expect(row.dataset.masked).toBe(masked ? "true" : undefined);
      expect(row.classList.contains("aw-nrow--masked")).toBe(masked);
      if (masked) {
        expect(row.dataset.softmax).toBe("0");
        expect(row.querySelector(".aw-nvalue")!.textContent).toBe("masked");
      } else expectShown(row.dataset.softmax, softmax[k]);
    });
    expect(host.querySelector(".aw-neuron-table--bias")).toBeNull();
  });

  it("adds the model's bias to the score, in a column of its own (T5)", () => {
    const bias = { shape: [1, 8, 8] as [number, number, number], at: (_h: number, q: number, k: number) => Math.fround((k - q) * 0.75) };
    const { model, synthetic } = neuronModel({ synthetic: { bias } });
    const host = mount(model);

    expect(host.querySelector(".aw-neuron-table--bias")).not.toBeNull();
    const softmax = expectedSoftmax(synthetic, 0, 2);
    rowsOf(host).forEach((row, k) => {
      expect(row.dataset.bias).toBe(k === 2 ? "0" : ((k - 2) * 0.75).toPrecision(3));
      expectShown(row.dataset.softmax, softmax[k]);
    });
  });

  it("names the key/value head a grouped query head reads", () => {
    expect(sharingCaption(5, [0, 0, 0, 0, 1, 1, 1, 1])).toBe("query head 5 reads key/value head 1 (shared by heads 4–7)");
    expect(sharingCaption(1, [0, 1, 2])).toBeNull();
    expect(headList([0, 2, 5])).toBe("0, 2, 5");

    const { model } = neuronModel({ heads: 4, synthetic: { kvHeadOf: [0, 0, 1, 1] }, traits: { head: 3 } });
    const host = mount(model);
    expect(host.querySelector(".aw-neuron-caption")!.textContent).toBe(
      "layer 0 · head 3 · query head 3 reads key/value head 1 (shared by heads 2, 3)",
    );
  });

  it("sets `token` from a click on a query or key token, and follows head and token from Python", () => {
    const { model, synthetic } = neuronModel();
    const host = mount(model);

    const keyLabel = rowsOf(host)[5].querySelector("button")!;
    keyLabel.click();
    expect(model.get("token")).toBe(5);
    expect(host.querySelector(".aw-neuron-query")!.textContent).toBe("it");
    host.querySelectorAll<HTMLButtonElement>(".aw-neuron-queries button")[1].click();
    expect(model.takeWrites()).toEqual({ writes: { token: 1 }, saves: 2 });

    model.fromPython({ head: 2, token: 4 });
    expect(host.querySelector(".aw-neuron-caption")!.textContent).toBe("layer 0 · head 2");
    rowsOf(host).forEach((row, k) => expect(row.dataset.score).toBe(score(synthetic, 2, 4, k).toPrecision(3)));
    button(host, "Head 0").click();
    expect(model.get("head")).toBe(0);

    const view = host.querySelector(".aw-neuronview")!;
    key(view, "ArrowDown");
    key(view, "ArrowRight");
    expect([model.get("token"), model.get("head")]).toEqual([5, 1]);
    key(view, "ArrowUp");
    key(view, "ArrowLeft");
    key(view, "ArrowLeft");
    expect([model.get("token"), model.get("head")]).toEqual([4, 0]);
  });

  it("reads the exact numbers of a row or a dimension on hover", () => {
    const { model, synthetic } = neuronModel();
    const host = mount(model);
    const body = host.querySelector<HTMLElement>(".aw-neuron-body")!;
    const readout = host.querySelector(".aw-readout")!;

    mouse(body, "mousemove", { clientX: 2000, clientY: 3 * NEURON_ROW + 5 });
    expect(readout.textContent).toContain(`key 3 “sat”: q·k × scale = ${score(synthetic, 0, 2, 3).toPrecision(6)}`);
    expect(readout.textContent).toContain(`softmax = ${expectedSoftmax(synthetic, 0, 2)[3].toPrecision(6)}`);
  });

  it("asks Python for the layer it shows when nothing was preloaded, once", async () => {
    const { model, synthetic } = neuronModel({ preload: "none", traits: { layer: 1 } });
    const host = mount(model);
    expect(status(host)).toMatch(/Loading the queries and keys of layer 1/);
    const requests = model.sent().filter((m) => m.what === "query_key");
    expect(requests).toEqual([{ kind: "request", id: requests[0].id, what: "query_key", stack: "self", layer: 1 }]);

    model.reply({ kind: "response", id: requests[0].id, what: "query_key", stack: "self", layer: 1 }, [offsetView(record(synthetic), 5)]);
    await settle();
    expect(rowsOf(host)).toHaveLength(8);
    model.fromPython({ token: 3 });
    expect(model.sent().filter((m) => m.what === "query_key")).toHaveLength(1);

    model.fromPython({ layer: 0 });
    const second = model.sent().filter((m) => m.what === "query_key")[1];
    model.reply({ kind: "response", id: second.id, error: "layer 0 is gone" });
    await settle();
    expect(status(host)).toBe("Could not load the queries and keys of layer 0: layer 0 is gone");
  });

  it("shows cross-attention: decoder queries against input keys, which are not clickable", () => {
    const { model } = neuronModel({ encoderDecoder: { decoderTokens: ["<s>", "le", "chat"] }, traits: { stack: "cross", token: 1 } });
    // The fixture's record is for self-attention; give the cross stack its own shape.
    const meta = model.get("meta");
    const synthetic: Synthetic = { heads: 3, kvHeadOf: [0, 1, 2], nQuery: 3, nKey: 8, dim: 4, scale: 0.5 };
    model.fromPython({ _qk: { "cross/0": offsetView(record(synthetic)) }, meta: { ...meta } });
    const host = mount(model);

    expect(host.querySelector(".aw-neuron-caption")!.textContent).toBe("cross attention · layer 0 · head 0");
    expect(host.querySelector(".aw-neuron-query")!.textContent).toBe("le");
    const rows = rowsOf(host);
    expect(rows).toHaveLength(8);
    expect(rows[0].querySelector("button")).toBeNull();
    rows.forEach((row, k) => expect(row.dataset.score).toBe(score(synthetic, 0, 1, k).toPrecision(3)));
  });

  it("says what is wrong with a record that does not fit the tokens", () => {
    const { model } = neuronModel();
    const wrong: Synthetic = { heads: 3, kvHeadOf: [0, 1, 2], nQuery: 5, nKey: 5, dim: 4, scale: 1 };
    model.fromPython({ _qk: { "self/0": offsetView(record(wrong)) }, meta: { ...model.get("meta") } });
    const host = mount(model);
    return settle().then(() => expect(status(host)).toMatch(/do not fit 3 heads × 8 queries × 8 keys/));
  });
});
