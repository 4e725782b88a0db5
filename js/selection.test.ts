import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { Meta, Traits } from "./contract";
import { Selection } from "./selection";
import { FakeModel } from "./test/fake-model";
import { fakeModel } from "./test/fixtures";

describe("selection", () => {
  it("writes through model.set and one save_changes per action", () => {
    const model = fakeModel({ traits: { view: "model" } });
    const selection = new Selection(model);
    selection.selectCell(1, 2);
    expect(model.takeWrites()).toEqual({ writes: { layer: 1, head: 2, view: "head" }, saves: 1 });
  });

  it("clamps layers and heads and ignores impossible values", () => {
    const model = fakeModel({ layers: 2, heads: 3 });
    const selection = new Selection(model);
    selection.setLayer(99);
    selection.setHead(-4);
    expect(model.get("layer")).toBe(1);
    expect(model.get("head")).toBe(0);
    model.takeWrites();
    selection.setToken(8);
    selection.toggleHead(3);
    selection.setView("graph" as never);
    selection.setStack("decoder");
    expect(model.takeWrites()).toEqual({ writes: {}, saves: 0 });
  });

  it("saves nothing when a value does not change", () => {
    const model = fakeModel();
    new Selection(model).setLayer(0);
    expect(model.takeWrites().saves).toBe(0);
  });

  it("reads stale model values as usable ones", () => {
    const model = fakeModel({ traits: { layer: 7, heads: [2, 9, 2, 0], token: 42, view: "bogus" as never } });
    const selection = new Selection(model);
    expect(selection.layer).toBe(1);
    expect(selection.heads).toEqual([0, 2]);
    expect(selection.token).toBeNull();
    expect(selection.view).toBe("head");
  });

  it("moves layer, heads and token into range when the stack changes", () => {
    const model = fakeModel({
      encoderDecoder: { decoderTokens: ["<s>", "le", "chat"] },
      traits: { token: 6, layer: 1 },
    });
    const selection = new Selection(model);
    selection.setStack("cross");
    expect(model.takeWrites()).toEqual({ writes: { stack: "cross", token: null }, saves: 1 });
    expect(selection.info!.query.tokens).toEqual(["<s>", "le", "chat"]);
  });

  it("tells subscribers about changes from Python, and stops on dispose", () => {
    const model = fakeModel();
    const selection = new Selection(model);
    const heard: string[] = [];
    selection.subscribe((trait) => heard.push(trait));
    model.fromPython({ layer: 1, pair_filter: "AB" });
    expect(heard).toEqual(["layer", "pair_filter"]);
    selection.dispose();
    expect(model.listenerCount()).toBe(0);
  });
});

// The one stack-fit rule, as cases Python tests too (tests/test_stack_fit.py).
const STACK_FIT: StackFitTable = JSON.parse(readFileSync("tests/fixtures/stack_fit.json", "utf8"));

interface StackFitTable {
  meta: Meta;
  cases: { name: string; from: FitTraits; to: string; expect: FitTraits }[];
}
type FitTraits = Pick<Traits, "stack" | "layer" | "head" | "heads" | "token" | "pair_filter">;

describe("fitting the selection to a new stack (tests/fixtures/stack_fit.json)", () => {
  it.each(STACK_FIT.cases)("$name", ({ from, to, expect: fitted }) => {
    const model = new FakeModel({ view: "head", theme: "light", score: "", step: null, meta: STACK_FIT.meta, _chunks: {}, _thumbs: {}, _qk: {}, ...from });
    new Selection(model).setStack(to);
    const traits = Object.keys(fitted) as (keyof FitTraits)[];
    expect(Object.fromEntries(traits.map((trait) => [trait, model.get(trait)]))).toEqual(fitted);
    expect(traits).toHaveLength(6);
  });
});
