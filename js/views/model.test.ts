import { describe, expect, it } from "vitest";
import { button } from "../test/dom";
import { fakeModel } from "../test/fixtures";
import { mount } from "../test/mount";

describe("model view", () => {
  it("has one button per layer and head; a click opens that head in the head view", () => {
    const model = fakeModel({ layers: 3, heads: 4, traits: { view: "model", heads: [0] } });
    const host = mount(model);
    expect(host.querySelectorAll("button.aw-cell")).toHaveLength(12);
    expect(button(host, "Layer 0 Head 0").getAttribute("aria-pressed")).toBe("true");
    button(host, "Layer 2 Head 3").click();
    expect(model.takeWrites()).toEqual({ writes: { layer: 2, head: 3, heads: [0, 3], view: "head" }, saves: 1 });
    expect(host.querySelector(".aw-headview")).not.toBeNull();
    expect(button(host, "Head").getAttribute("aria-pressed")).toBe("true");
  });

  it("highlights the selected cell when the selection changes elsewhere", () => {
    const model = fakeModel({ traits: { view: "model" } });
    const host = mount(model);
    model.fromPython({ layer: 1, head: 2 });
    const selected = [...host.querySelectorAll(".aw-cell--selected")].map((c) => c.getAttribute("aria-label"));
    expect(selected).toEqual(["Layer 1 Head 2"]);
  });

  it("draws every head from the thumbnails, asking Python for no attention", () => {
    const model = fakeModel({ layers: 2, preload: "none", traits: { view: "model" } });
    const host = mount(model);
    const rows = [...host.querySelectorAll<HTMLElement>(".aw-mrow[data-layer]")];
    expect(rows.map((r) => r.textContent)).toEqual(["Layer 0", "Layer 1"]);
    expect(model.sent()).toEqual([]);
  });

  it("says a row failed when its thumbnails do not fit meta", () => {
    const model = fakeModel({ layers: 2, traits: { view: "model" } });
    model.fromPython({ _thumbs: { ...model.get("_thumbs"), "self/1": new Uint8Array(5) } });
    const host = mount(model);
    const state = host.querySelector<HTMLElement>('.aw-mrow[data-layer="1"] .aw-mstate')!;
    expect(state.textContent).toBe("failed");
    expect(state.title).toMatch(/thumbnails of self\/1 have 5 bytes, expected 192/);
  });
});
