import { describe, expect, it } from "vitest";
import type { GenerationMeta } from "../contract";
import { button, chooseOption, key, labelled, visible } from "../test/dom";
import { buildFixture } from "../test/fixtures";
import { FakeModel } from "../test/fake-model";
import { mount } from "../test/mount";

// "the cat" generated "sat down ." : step s is query row 1 + s, which produced the token at row 2 + s.
const TOKENS = ["[CLS]", "the", "cat", "sat", "down", "."];
const GENERATION: GenerationMeta = { stack: "self", side: "input", prompt_length: 2, first_row: 1, steps: 4 };

function generated(options: Parameters<typeof buildFixture>[0] = {}, generation = GENERATION): FakeModel {
  const { traits } = buildFixture({ tokens: TOKENS, ...options });
  return new FakeModel({ ...traits, meta: { ...traits.meta, generation }, step: 0, token: generation.first_row });
}

const slider = (host: HTMLElement) => host.querySelector<HTMLInputElement>('input[aria-label="Generation step"]')!;
const label = (host: HTMLElement) => host.querySelector(".aw-step-label")!.textContent;
const queryToken = (host: HTMLElement, i: number) => host.querySelectorAll<HTMLButtonElement>(".aw-tokens--query .aw-tok")[i];

function slide(host: HTMLElement, value: number): void {
  slider(host).value = String(value);
  slider(host).dispatchEvent(new Event("input", { bubbles: true }));
}

describe("generation step control", () => {
  it("is hidden in a widget that shows no generation", () => {
    const host = mount(new FakeModel(buildFixture().traits));
    expect(visible(host.querySelector(".aw-step")!)).toBe(false);
  });

  it("names the step and the token it produced, and the slider selects that step's query row in one save", () => {
    const model = generated();
    const host = mount(model);
    expect(visible(slider(host))).toBe(true);
    expect(label(host)).toBe("step 0 of 4: 'cat'");
    model.takeWrites();
    slide(host, 2);
    expect(model.takeWrites()).toEqual({ writes: { token: 3, step: 2 }, saves: 1 });
    expect(label(host)).toBe("step 2 of 4: 'down'");
    expect(queryToken(host, 3).getAttribute("aria-pressed")).toBe("true");
  });

  it("moves one step with ] and [ anywhere in the widget, and stops at the ends", () => {
    const model = generated();
    const host = mount(model);
    const root = host.querySelector(".attnwidget")!;
    key(root, "]");
    key(queryToken(host, 0), "]");
    expect(model.get("step")).toBe(2);
    expect(model.get("token")).toBe(3);
    key(root, "[");
    expect(model.get("step")).toBe(1);
    ["[", "[", "["].forEach((k) => key(root, k));
    expect(model.get("step")).toBe(0);
    expect(button(host, "Previous step").disabled).toBe(true);
    button(host, "Next step").click();
    expect(label(host)).toBe("step 1 of 4: 'sat'");
    key(slider(host), "ArrowRight");
    expect(model.get("step")).toBe(2);
    key(slider(host), "End");
    expect(model.get("step")).toBe(3);
    key(slider(host), "ArrowDown");
    expect(model.get("step")).toBe(2);
  });

  it("follows a token click: a generated token's query row is its step, a prompt token none", () => {
    const model = generated();
    const host = mount(model);
    queryToken(host, 4).click();
    expect([model.get("token"), model.get("step")]).toEqual([4, 3]);
    expect(slider(host).value).toBe("3");
    expect(label(host)).toBe("step 3 of 4: '.'");
    queryToken(host, 0).click();
    expect([model.get("token"), model.get("step")]).toEqual([0, null]);
    expect(label(host)).toMatch(/^no step selected \(4 in all\)/);
    key(host.querySelector(".attnwidget")!, "]");
    expect(model.get("step")).toBe(0);
  });

  it("follows Python's step", () => {
    const model = generated();
    const host = mount(model);
    model.fromPython({ step: 3, token: 4 });
    expect(slider(host).value).toBe("3");
    expect(label(host)).toBe("step 3 of 4: '.'");
  });

  it("shows an encoder-decoder's step in the cross-attention when the encoder is selected", () => {
    const generation: GenerationMeta = { stack: "cross", side: "decoder", prompt_length: 6, first_row: 0, steps: 3 };
    const model = generated({ encoderDecoder: { decoderTokens: ["<s>", "a", "cat", "</s>"] } }, generation);
    model.fromPython({ stack: "encoder", token: null, step: null });
    const host = mount(model);
    expect(label(host)).toMatch(/^no step selected \(3 in all\)/);
    slide(host, 1);
    expect([model.get("stack"), model.get("token"), model.get("step")]).toEqual(["cross", 1, 1]);
    expect(label(host)).toBe("step 1 of 3: 'cat'");
    chooseOption(labelled(host, "Attention"), "encoder");
    expect([model.get("token"), model.get("step")]).toEqual([null, null]);
  });
});
