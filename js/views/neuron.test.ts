import { describe, expect, it } from "vitest";
import { headKey, type Meta, type Traits } from "../contract";
import { headList } from "../draw/format";
import { button, key, mouse } from "../test/dom";
import { buildFixture, longNeuronModel, offsetView } from "../test/fixtures";
import { FakeModel } from "../test/fake-model";
import { golden, goldenTraits, maskOnlyRecord, numbers, uncappedRecord } from "../test/golden";
import { mount, settle } from "../test/mount";
import { QUERY_WINDOW } from "../neuron/query";
import { NEURON_ROW, sharingCaption } from "./neuron";

// The query-key records are the golden fixture Python wrote (tests/fixtures/contract/), one per head, and the
// numbers the view must show are the ones Python computed beside them in expected.json.
const { meta: GOLDEN_META, expected } = golden();
/** The page names layers by the model's own numbers: the fixture's layer 1 is the model's layer 3. */
const LAYER_NUMBERS = GOLDEN_META.stacks[0].layer_numbers!;
const LAYER_NAME = LAYER_NUMBERS[expected.layer];
const [N_QUERY, N_KEY] = expected.attention.shape;
const TOKENS = GOLDEN_META.sides.input.tokens;
const HEAD_KEYS = expected.head_keys;
const [SCORES, BIAS, SOFTMAX] = (["scores", "bias", "softmax"] as const).map((name) => expected.query_key.map((record) => numbers(record[name])));
const at = (values: number[][], h: number, q: number, k: number) => values[h][q * N_KEY + k];
const score = (h: number, q: number, k: number) => at(SCORES, h, q, k);
const expectedSoftmax = (h: number, q: number) => Array.from({ length: N_KEY }, (_, k) => at(SOFTMAX, h, q, k));

/** The fixture's widget in the neuron view, query token 2, with its records preloaded unless `preload` is "none". */
function neuronModel(options: { traits?: Partial<Traits>; preload?: "all" | "none" } = {}) {
  const traits = goldenTraits({ view: "neuron", token: 2, ...options.traits });
  const preloaded = options.preload !== "none";
  const meta: Meta = { ...traits.meta, query_key: { available: true, complete: preloaded } };
  return new FakeModel({ ...traits, meta, _qk: preloaded ? traits._qk : {} });
}

const rowsOf = (host: HTMLElement) => [...host.querySelectorAll<HTMLElement>(".aw-neuron-rows .aw-nrow:not(.aw-nrow--sink)")];
const sinkOf = (host: HTMLElement) => host.querySelector<HTMLElement>(".aw-neuron-rows .aw-nrow--sink");
const status = (host: HTMLElement) => host.querySelector(".aw-neuronview [role=status]")!.textContent;

/** A shown number equals `value` to the three significant digits shown. */
function expectShown(text: string | undefined, value: number): void {
  const digit = 10 ** (Math.floor(Math.log10(Math.abs(value))) - 2);
  expect(Math.abs(Number(text) - value)).toBeLessThanOrEqual(digit / 2 + 1e-12);
}

function mountLongHead(n: number) {
  const model = longNeuronModel(n);
  return { model, host: mount(model) };
}

describe("neuron view", () => {
  it("shows for each key Python's score and the capture's softmax, to the digits shown", () => {
    const model = neuronModel({ traits: { head: 1 } });
    const host = mount(model);

    const rows = rowsOf(host);
    expect(rows).toHaveLength(N_KEY);
    const softmax = expectedSoftmax(1, 2);
    rows.forEach((row, k) => {
      expect(row.dataset.key).toBe(String(k));
      expect(row.dataset.score).toBe(score(1, 2, k).toPrecision(3));
      expectShown(row.dataset.softmax, softmax[k]);
      if (softmax[k] > 0) expect(row.querySelector(".aw-nvalue")!.textContent).toBe(row.dataset.softmax);
    });
    // The sink takes the rest of the row.
    expect(rows.reduce((sum, row) => sum + Number(row.dataset.softmax), Number(sinkOf(host)!.dataset.softmax))).toBeCloseTo(1, 2);
    expect(host.querySelector(".aw-neuron-query")!.textContent).toBe(TOKENS[2]);
    expect(status(host)).toBe("");
  });

  it("opens on the first non-special token without selecting it, and moves on from there", () => {
    const model = neuronModel({ traits: { token: null, head: 1 } });
    const host = mount(model);
    const first = GOLDEN_META.sides.input.special.indexOf(false);
    expect(first).toBeGreaterThan(0);
    expect(host.querySelector(".aw-neuron-query")!.textContent).toBe(TOKENS[first]);
    rowsOf(host).forEach((row, k) => expect(row.dataset.score).toBe(score(1, first, k).toPrecision(3)));
    const queries = [...host.querySelectorAll<HTMLButtonElement>(".aw-neuron-queries button")];
    expect(queries.map((b) => b.getAttribute("aria-pressed"))).not.toContain("true");
    expect(queries[first].classList.contains("aw-tok--focus")).toBe(true);
    // Shown, not selected: Python's `token` is left alone until the user picks one.
    expect(model.takeWrites().writes).toEqual({});
    key(host.querySelector(".aw-neuronview")!, "ArrowDown");
    expect(model.get("token")).toBe(first + 1);
    expect(queries[first].classList.contains("aw-tok--focus")).toBe(false);
  });

  it("greys out and labels the keys a causal mask hides, with no bias column for a pure mask", () => {
    // Head 1's bias is ALiBi on a causal mask; reduced to the mask.
    const model = neuronModel({ traits: { token: 3, head: 1 } });
    model.fromPython({ _qk: { ...model.get("_qk"), [HEAD_KEYS[1]]: offsetView(maskOnlyRecord(1)) }, meta: { ...model.get("meta") } });
    const host = mount(model);

    const rows = rowsOf(host);
    rows.forEach((row, k) => {
      const masked = at(BIAS, 1, 3, k) === -Infinity;
      expect(row.dataset.masked).toBe(masked ? "true" : undefined);
      expect(row.classList.contains("aw-nrow--masked")).toBe(masked);
      if (masked) {
        expect(row.dataset.softmax).toBe("0");
        expect(row.querySelector(".aw-nvalue")!.textContent).toBe("masked");
      }
    });
    expect(rows.some((row) => row.dataset.masked)).toBe(true);
    expect(host.querySelector(".aw-neuron-table--bias")).toBeNull();
  });

  it("adds the model's bias to the score, in a column of its own (T5)", () => {
    const model = neuronModel();
    const host = mount(model);

    expect(host.querySelector(".aw-neuron-table--bias")).not.toBeNull();
    const softmax = expectedSoftmax(0, 2);
    rowsOf(host).forEach((row, k) => {
      const bias = at(BIAS, 0, 2, k);
      expect(row.dataset.bias).toBe(bias === -Infinity ? "masked" : bias === 0 ? "0" : bias.toPrecision(3));
      expectShown(row.dataset.softmax, softmax[k]);
    });
  });

  it("shows the soft-capped score as a step of its own, between the score and the bias (Gemma 2)", () => {
    const host = mount(neuronModel());
    const cap = expected.query_key[0].softcap!;

    expect(host.querySelector(".aw-neuron-table--capped")).not.toBeNull();
    const titles = [...host.querySelectorAll(".aw-nrow--head > span")].map((span) => span.textContent);
    expect(titles.slice(4, 7)).toEqual(["q·k × scale", "capped", "+ bias"]);
    rowsOf(host).forEach((row, k) => expectShown(row.dataset.capped, cap * Math.tanh(score(0, 2, k) / cap)));
    // The cap changes what the softmax reads: uncapped scores would give other weights.
    const big = rowsOf(host).findIndex((_, k) => Math.abs(score(0, 2, k)) > cap / 2);
    expect(big).toBeGreaterThanOrEqual(0);
    const capped = cap * Math.tanh(score(0, 2, big) / cap);
    expect(Math.abs(capped - score(0, 2, big))).toBeGreaterThan(0.01);

    const body = host.querySelector<HTMLElement>(".aw-neuron-body")!;
    mouse(body, "mousemove", { clientX: 2000, clientY: big * NEURON_ROW + 5 });
    expect(host.querySelector(".aw-readout")!.textContent).toContain(`, capped ${capped.toPrecision(6)}`);
  });

  it("has no capped column for a model that does not cap its scores", () => {
    const model = neuronModel();
    model.fromPython({ _qk: { [HEAD_KEYS[0]]: offsetView(uncappedRecord(0)) }, meta: { ...model.get("meta") } });
    const host = mount(model);

    expect(host.querySelector(".aw-neuron-table--capped")).toBeNull();
    rowsOf(host).forEach((row) => expect(row.dataset.capped).toBeUndefined());
    mouse(host.querySelector<HTMLElement>(".aw-neuron-body")!, "mousemove", { clientX: 2000, clientY: 3 * NEURON_ROW + 5 });
    expect(host.querySelector(".aw-readout")!.textContent).toMatch(/^key 3 .*: q·k × scale = \S+ [+−]/);
  });

  it("shows the sink as a last row, named as meta names it: this query's logit and the weight it takes", () => {
    const host = mount(neuronModel({ traits: { head: 2 } }));
    // The fixture's layer has a sink per head and query: the log-sum-exp of its 2 prompt positions' logits.
    const sinks = numbers(expected.query_key[2].arrays.sinks);
    const logit = sinks[2];
    const sink = sinkOf(host)!;

    const label = sink.querySelector<HTMLElement>(".aw-tok")!;
    expect(label.textContent).toBe("<prompt>");
    expect(label.title).toMatch(/^<prompt>: the 2 prompt positions the model puts before the text; its logit is the log-sum-exp/);
    expect(sink.dataset.score).toBe(logit.toPrecision(3));
    expect(sinks[3]).not.toBe(logit); // each query has its own
    const keys = expectedSoftmax(2, 2).reduce((a, b) => a + b, 0);
    expect(keys).toBeLessThan(0.99);
    expectShown(sink.dataset.softmax, 1 - keys);
    const body = host.querySelector<HTMLElement>(".aw-neuron-body")!;
    expect(body.style.height).toBe(`${(N_KEY + 1) * NEURON_ROW}px`);
    mouse(body, "mousemove", { clientX: 2000, clientY: N_KEY * NEURON_ROW + 5 });
    expect(host.querySelector(".aw-readout")!.textContent).toBe(
      `<prompt>: logit ${logit.toPrecision(6)}, the log-sum-exp of the logits of the 2 prompt positions the model puts ` +
        `before the text; softmax = ${Number(1 - keys).toPrecision(6)}, what they take together`,
    );
  });

  it("names the key/value head a grouped query head reads", () => {
    expect(sharingCaption(5, [0, 0, 0, 0, 1, 1, 1, 1])).toBe("query head 5 reads key/value head 1 (shared by heads 4–7)");
    expect(sharingCaption(1, [0, 1, 2])).toBeNull();
    expect(headList([0, 2, 5])).toBe("0, 2, 5");

    // The fixture's stack groups heads as [0, 0, 1, 1].
    const model = neuronModel({ traits: { head: 3 } });
    const host = mount(model);
    expect(host.querySelector(".aw-neuron-caption")!.textContent).toBe(
      `layer ${LAYER_NAME} · head 3 · query head 3 reads key/value head 1 (shared by heads 2, 3)`,
    );
  });

  it("sets `token` from a click on a query or key token, and follows head and token from Python", () => {
    const model = neuronModel();
    const host = mount(model);

    const keyLabel = rowsOf(host)[4].querySelector("button")!;
    keyLabel.click();
    expect(model.get("token")).toBe(4);
    expect(host.querySelector(".aw-neuron-query")!.textContent).toBe(TOKENS[4]);
    host.querySelectorAll<HTMLButtonElement>(".aw-neuron-queries button")[1].click();
    expect(model.takeWrites()).toEqual({ writes: { token: 1 }, saves: 2 });

    model.fromPython({ head: 1, token: 3 });
    expect(host.querySelector(".aw-neuron-caption")!.textContent).toBe(
      `layer ${LAYER_NAME} · head 1 · query head 1 reads key/value head 0 (shared by heads 0, 1)`,
    );
    rowsOf(host).forEach((row, k) => expect(row.dataset.score).toBe(score(1, 3, k).toPrecision(3)));
    button(host, "Head 0").click();
    expect(model.get("head")).toBe(0);

    const view = host.querySelector(".aw-neuronview")!;
    key(view, "ArrowDown");
    key(view, "ArrowRight");
    expect([model.get("token"), model.get("head")]).toEqual([4, 1]);
    key(view, "ArrowUp");
    key(view, "ArrowLeft");
    key(view, "ArrowLeft");
    expect([model.get("token"), model.get("head")]).toEqual([3, 0]);
  });

  it("reads the exact numbers of a row or a dimension on hover", () => {
    const model = neuronModel();
    const host = mount(model);
    const body = host.querySelector<HTMLElement>(".aw-neuron-body")!;
    const readout = host.querySelector(".aw-readout")!;

    mouse(body, "mousemove", { clientX: 2000, clientY: 3 * NEURON_ROW + 5 });
    expect(readout.textContent).toContain(`key 3 “${TOKENS[3]}”: q·k × scale = ${score(0, 2, 3).toPrecision(6)}`);
    const softmax = Number(/softmax = (\S+)$/.exec(readout.textContent!)![1]);
    expect(Math.abs(softmax - expectedSoftmax(0, 2)[3])).toBeLessThan(1e-6);
  });

  it("asks Python for the head it shows when nothing was preloaded, once", async () => {
    const model = neuronModel({ preload: "none" });
    const { queryKeys } = golden();
    const host = mount(model);
    const layer = expected.layer;
    expect(status(host)).toBe(`Loading the queries and keys of layer ${LAYER_NAME}, head 0…`);
    const asked = () => model.sent().filter((m) => m.what === "query_key");
    expect(asked()).toEqual([{ kind: "request", id: asked()[0].id, what: "query_key", stack: "self", layer, head: 0 }]);

    model.reply({ kind: "response", id: asked()[0].id, what: "query_key", stack: "self", layer, head: 0 }, [offsetView(queryKeys[0], 5)]);
    await settle();
    expect(rowsOf(host)).toHaveLength(N_KEY);
    model.fromPython({ token: 3 });
    expect(asked()).toHaveLength(1);

    model.fromPython({ head: 3 });
    expect(asked()[1]).toMatchObject({ layer, head: 3 });
    model.reply({ kind: "response", id: asked()[1].id, what: "query_key", stack: "self", layer, head: 3 }, [offsetView(queryKeys[3], 5)]);
    await settle();
    rowsOf(host).forEach((row, k) => expect(row.dataset.score).toBe(score(3, 3, k).toPrecision(3)));

    model.fromPython({ layer: 0 });
    model.reply({ kind: "response", id: asked()[2].id, error: "layer 0 is gone" });
    await settle();
    expect(status(host)).toBe(`Could not load the queries and keys of layer ${LAYER_NUMBERS[0]}, head 3: layer 0 is gone`);
  });

  it("shows cross-attention: decoder queries against input keys, which are not clickable", () => {
    // An encoder-decoder whose cross stack has the fixture record's shape: its queries are a decoder's.
    const decoderTokens = ["<s>", "le", "chat", "dort", "</s>"].slice(0, N_QUERY);
    const input = GOLDEN_META.sides.input;
    const stack = { ...GOLDEN_META.stacks[0] };
    const meta: Meta = {
      ...GOLDEN_META,
      sides: { input, decoder: { tokens: decoderTokens, special: decoderTokens.map(() => false), segment_b_start: null } },
      stacks: [
        { ...stack, name: "encoder" },
        { ...stack, name: "decoder", query_side: "decoder", key_side: "decoder" },
        { ...stack, name: "cross", query_side: "decoder", key_side: "input" },
      ],
    };
    const model = neuronModel({ traits: { stack: "cross", token: 1 } });
    model.fromPython({ meta, _qk: { [headKey("cross", expected.layer, 0)]: offsetView(golden().queryKeys[0]) } });
    const host = mount(model);

    expect(host.querySelector(".aw-neuron-caption")!.textContent).toBe(
      `cross attention · layer ${LAYER_NAME} · head 0 · query head 0 reads key/value head 0 (shared by heads 0, 1)`,
    );
    expect(host.querySelector(".aw-neuron-query")!.textContent).toBe("le");
    const rows = rowsOf(host);
    expect(rows).toHaveLength(N_KEY);
    expect(rows[0].querySelector("button")).toBeNull();
    rows.forEach((row, k) => expect(row.dataset.score).toBe(score(0, 1, k).toPrecision(3)));
  });

  it("says what is wrong with a record that does not fit the tokens", () => {
    // The fixture's record against a stack of 3 heads and 8 tokens.
    const { traits } = buildFixture({ traits: { view: "neuron", token: 2, layer: expected.layer } });
    const meta: Meta = { ...traits.meta, query_key: { available: true, complete: true } };
    const model = new FakeModel({ ...traits, meta, _qk: { [HEAD_KEYS[0]]: offsetView(golden().queryKeys[0]) } });
    const host = mount(model);
    return settle().then(() => expect(status(host)).toMatch(/query of shape 5×4 does not fit 8 queries × 8 keys/));
  });

  it("keeps only the key rows in view in the page, and draws the others as they scroll in", async () => {
    const n = 3000;
    const { host } = mountLongHead(n);
    const body = host.querySelector<HTMLElement>(".aw-neuron-body")!;
    const scroller = body.closest<HTMLElement>(".aw-scroll")!;
    const keysInPage = () => rowsOf(host).map((row) => Number(row.dataset.key));

    expect(body.style.height).toBe(`${n * NEURON_ROW}px`);
    expect(keysInPage()[0]).toBe(0);
    expect(keysInPage().length).toBeLessThan(60);

    // Scrolled to key 2000: the box's top lies 2000 rows below the rows' top.
    body.getBoundingClientRect = () => ({ top: -2000 * NEURON_ROW }) as DOMRect;
    scroller.dispatchEvent(new Event("scroll"));
    await new Promise((resolve) => requestAnimationFrame(resolve));
    const keys = keysInPage();
    expect(keys.length).toBeLessThan(60);
    expect(keys[0]).toBeGreaterThan(1980);
    expect(keys).toContain(2000);
    const row = rowsOf(host).find((item) => item.dataset.key === "2000")!;
    expect(row.dataset.score).toBe((2000 / n).toPrecision(3));
    expect(row.querySelector(".aw-tok")!.textContent).toBe("t2000");
    mouse(body, "mousemove", { clientX: 2000, clientY: 5 }); // over the row at the box's top
    expect(host.querySelector(".aw-readout")!.textContent).toMatch(/^key 2000 “t2000”: q·k × scale = 0\.666667;/);

    // Five rows further: the rows still in view stay (the same elements), those at the edges come and go, in order.
    body.getBoundingClientRect = () => ({ top: -2005 * NEURON_ROW }) as DOMRect;
    scroller.dispatchEvent(new Event("scroll"));
    await new Promise((resolve) => requestAnimationFrame(resolve));
    const moved = keysInPage();
    expect(moved).toEqual(Array.from({ length: moved.length }, (_, i) => keys[0] + 5 + i));
    expect(moved.length).toBe(keys.length);
    expect(rowsOf(host).find((item) => item.dataset.key === "2000")).toBe(row);
  });

  it("makes buttons of a long input's query tokens only around the query shown, and pages to the others", () => {
    const n = 3000;
    const { model, host } = mountLongHead(n);
    const queries = host.querySelector<HTMLElement>("[aria-label='Query tokens']")!;
    const tokens = () => [...queries.querySelectorAll<HTMLElement>("[data-index]")].map((b) => b.textContent);
    const more = () => [...queries.querySelectorAll<HTMLElement>(".aw-neuron-more")].map((b) => b.textContent);
    expect(tokens()).toHaveLength(QUERY_WINDOW);
    expect(tokens()[0]).toBe("t0");
    expect(more()).toEqual([`… ${n - QUERY_WINDOW} later`]);

    // Another query (from Python, or a key row's click): the buttons move to hold it, and it is the pressed one.
    model.set("token", 2000);
    expect(tokens()).toContain("t2000");
    expect(queries.querySelector("[aria-pressed=true]")!.textContent).toBe("t2000");
    const earlier = Number(more()[0].match(/… (\d+) earlier/)![1]);
    expect(more()).toEqual([`… ${earlier} earlier`, `… ${n - earlier - QUERY_WINDOW} later`]);

    // "later" shows the next tokens and leaves the query alone; a click on one of them makes it the query.
    button(queries, `… ${n - earlier - QUERY_WINDOW} later`).click();
    expect(tokens()[0]).toBe(`t${earlier + QUERY_WINDOW}`);
    expect(model.get("token")).toBe(2000);
    expect(host.querySelector(".aw-neuron-query")!.textContent).toBe("t2000");
    queries.querySelector<HTMLElement>("[data-index]")!.click();
    expect(model.get("token")).toBe(earlier + QUERY_WINDOW);
  });
});
