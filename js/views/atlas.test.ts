import { describe, expect, it } from "vitest";
import type { HeadScores, Meta } from "../contract";
import { button, labelled } from "../test/dom";
import { fakeModel } from "../test/fixtures";
import { mount } from "../test/mount";
import { headOrder, scoreColumn, scoreFraction, topHeads } from "./atlas";

// Two layers of three heads: "previous token" with fixed bounds, "entropy" scaled to its own range.
const SCORES: HeadScores = {
  scores: [
    { name: "previous_token", label: "previous token", about: "mean weight on the token before", range: [0, 1] },
    { name: "entropy", label: "entropy", about: "nats", range: null },
  ],
  values: {
    self: [
      [[0.1, 2], [0.9, 1], [null, 3]],
      [[0.5, 4], [0.2, 2], [0.95, 1]],
    ],
  },
};

function scoredModel(traits = {}) {
  const model = fakeModel({ layers: 2, heads: 3, traits: { view: "model", ...traits } });
  model.fromPython({ meta: { ...model.get("meta"), head_scores: SCORES } });
  return model;
}

describe("atlas maths", () => {
  const meta = { head_scores: SCORES } as unknown as Meta;

  it("reads one score of every head, with fixed bounds or the stack's own", () => {
    const previous = scoreColumn(meta, "self", 0)!;
    expect(previous.values).toEqual([[0.1, 0.9, null], [0.5, 0.2, 0.95]]);
    expect([previous.low, previous.high]).toEqual([0, 1]);
    const entropy = scoreColumn(meta, "self", 1)!;
    expect([entropy.low, entropy.high]).toEqual([1, 4]);
    expect(scoreFraction(entropy, 2.5)).toBeCloseTo(0.5);
    expect(scoreColumn(meta, "cross", 0)).toBeNull();
  });

  it("ranks the stack's heads highest first and orders a layer's heads, undefined ones last", () => {
    const previous = scoreColumn(meta, "self", 0)!;
    expect(topHeads(previous, 3)).toEqual([
      { layer: 1, head: 2, value: 0.95 },
      { layer: 0, head: 1, value: 0.9 },
      { layer: 1, head: 0, value: 0.5 },
    ]);
    expect(headOrder(previous, 0)).toEqual([1, 0, 2]);
    expect(headOrder(previous, 1)).toEqual([2, 0, 1]);
  });
});

describe("atlas in the model view", () => {
  it("stays hidden without scores", () => {
    const host = mount(fakeModel({ traits: { view: "model" } }));
    expect(host.querySelector<HTMLElement>(".aw-atlas")!.hidden).toBe(true);
  });

  it("writes the chosen score to Python and shows it on every head", () => {
    const model = scoredModel();
    const host = mount(model);
    const select = labelled(host, "Score");
    expect([...select.options].map((o) => o.text)).toEqual(["none", "previous token", "entropy"]);
    select.value = "previous_token";
    select.dispatchEvent(new Event("change"));
    expect(model.takeWrites()).toEqual({ writes: { score: "previous_token" }, saves: 1 });
    const bar = (layer: number, head: number) =>
      host.querySelector<HTMLElement>(`.aw-cell[data-layer="${layer}"][data-head="${head}"] .aw-score-bar`)!;
    expect(bar(0, 1).style.getPropertyValue("--aw-score")).toBe("0.9");
    expect(bar(0, 2).hidden).toBe(true);
    expect(button(host, "Layer 0 Head 1").title).toBe("Layer 0 Head 1: previous token 0.9");
  });

  it("follows a score set from Python, sorts rows and dims heads below the threshold", () => {
    const model = scoredModel();
    const host = mount(model);
    model.fromPython({ score: "previous_token" });
    expect(labelled(host, "Score").value).toBe("previous_token");
    const sort = host.querySelector<HTMLInputElement>("input[aria-label='Sort heads by score']")!;
    sort.checked = true;
    sort.dispatchEvent(new Event("change"));
    const order = (layer: number) =>
      [...host.querySelectorAll<HTMLElement>(`.aw-cell[data-layer="${layer}"]`)]
        .sort((a, b) => Number(a.style.order) - Number(b.style.order))
        .map((cell) => Number(cell.dataset.head));
    expect(order(0)).toEqual([1, 0, 2]);
    const threshold = host.querySelector<HTMLInputElement>("input[aria-label='Dim heads below']")!;
    threshold.value = "0.5";
    threshold.dispatchEvent(new Event("input"));
    const dimmed = [...host.querySelectorAll(".aw-cell--dimmed")].map((c) => c.getAttribute("aria-label"));
    expect(dimmed).toEqual(["Layer 0 Head 0", "Layer 0 Head 2", "Layer 1 Head 1"]);
  });

  it("lists the top heads; a click opens one in the head view", () => {
    const model = scoredModel({ score: "entropy", heads: [0] });
    const host = mount(model);
    const top = [...host.querySelectorAll<HTMLButtonElement>(".aw-atlas-head")];
    expect(top.map((b) => b.textContent)).toEqual(["L1 H0 4", "L0 H2 3", "L0 H0 2", "L1 H1 2", "L0 H1 1", "L1 H2 1"]);
    top[0].click();
    expect(model.takeWrites()).toEqual({ writes: { layer: 1, view: "head" }, saves: 1 }); // head 0 was focused
    expect(host.querySelector(".aw-headview")).not.toBeNull();
  });
});
