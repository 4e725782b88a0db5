import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { Meta, Traits } from "../contract";
import { caption, fileName } from "../image/snapshot";
import { Selection } from "../selection";
import { FakeModel } from "../test/fake-model";
import { mount } from "../test/mount";
import { chosenStack, measuresOf } from "./derived";

// Recorded encoder, decoder and cross stacks with the stacks derived from them (capturing/derived.py), as Python
// writes them: tests/fixtures/stack_fit.json.
const META: Meta = JSON.parse(readFileSync("tests/fixtures/stack_fit.json", "utf8")).meta;

function model(traits: Partial<Traits>): FakeModel {
  return new FakeModel({
    layer: 0, head: 0, heads: [0, 1, 2, 3], token: null, stack: "encoder", view: "head", theme: "light",
    pair_filter: "all", score: "", step: null, meta: META, _chunks: {}, _thumbs: {}, _qk: {}, ...traits,
  });
}

const field = (host: HTMLElement, name: string) => host.querySelector<HTMLElement>(`[aria-label="${name}"]`)!;
const fieldShown = (host: HTMLElement, name: string) => !field(host, name).closest("label")!.hidden;

function choose(select: HTMLSelectElement | HTMLInputElement, value: string | boolean): void {
  if (typeof value === "boolean") (select as HTMLInputElement).checked = value;
  else select.value = value;
  select.dispatchEvent(new Event("change"));
}

describe("choosing a recorded stack, its weights and words", () => {
  it("lists the recorded stacks, the measures of the selected one, and words where they exist", () => {
    const host = mount(model({ stack: "encoder·rollout·words" }));
    const stacks = field(host, "Attention") as HTMLSelectElement;
    expect([...stacks.options].map((option) => option.value)).toEqual(["encoder", "decoder", "cross"]);
    expect(stacks.value).toBe("encoder");
    const weights = field(host, "Weights") as HTMLSelectElement;
    expect([...weights.options].map((option) => option.text)).toEqual(["attention", "rollout"]);
    expect(weights.value).toBe("rollout");
    expect((field(host, "Words") as HTMLInputElement).checked).toBe(true);
    expect(fieldShown(host, "Weights") && fieldShown(host, "Words")).toBe(true);
  });

  it("writes the stack trait, fitting the selection: a token moves to its word and back", () => {
    const fake = model({ stack: "encoder", token: 5, heads: [0, 3], head: 3, layer: 2 });
    const host = mount(fake);
    choose(field(host, "Words") as HTMLInputElement, true);
    expect([fake.get("stack"), fake.get("token")]).toEqual(["encoder·words", 3]); // "##d" is in word 3
    choose(field(host, "Weights") as HTMLSelectElement, "rollout");
    expect([fake.get("stack"), fake.get("head"), fake.get("heads")]).toEqual(["encoder·rollout·words", 0, [0]]);
    choose(field(host, "Words") as HTMLInputElement, false);
    expect([fake.get("stack"), fake.get("token")]).toEqual(["encoder·rollout", 4]); // word 3 starts at token 4
  });

  it("follows a stack set from Python, and hides what the stack has not", () => {
    const fake = model({ stack: "encoder" });
    const host = mount(fake);
    fake.fromPython({ stack: "cross·words" });
    expect((field(host, "Attention") as HTMLSelectElement).value).toBe("cross");
    expect((field(host, "Words") as HTMLInputElement).checked).toBe(true);
    expect(fieldShown(host, "Weights")).toBe(false); // cross-attention has no rollout
    expect(fieldShown(host, "Words")).toBe(true);
  });

  it("keeps the measure and words across bases where it can, else falls back", () => {
    expect(measuresOf(META, "cross")).toEqual(["attention"]);
    expect(chosenStack(META, "decoder", "rollout", true)).toBe("decoder·rollout·words");
    expect(chosenStack(META, "cross", "rollout", true)).toBe("cross·words");
    expect(chosenStack(META, "cross", "rollout", false)).toBe("cross");
  });

  it("says in the neuron view that a derived stack has no queries or keys, and how to get them", () => {
    const host = mount(model({ stack: "encoder·rollout·words", view: "neuron" }));
    expect(host.querySelector(".aw-status")!.textContent).toBe(
      "These heads are the rollout at word level of encoder, computed from its attention: they have no queries or keys. " +
        "Choose Weights: attention and Words off to see the queries and keys of encoder.",
    );
  });

  it("names a derived stack in a saved picture's caption and file name", () => {
    const selection = new Selection(model({ stack: "encoder·rollout·words", heads: [0], layer: 2 }));
    expect(caption(selection)).toBe("Head view · encoder attention · rollout · words · layer 2 · all 1 heads");
    expect(fileName(selection, "png")).toBe("attnwidget-head-encoder-rollout-words-layer2-head0.png");
  });
});
