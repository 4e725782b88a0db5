import { describe, expect, it } from "vitest";
import { button } from "../test/dom";
import { chunkBytes, fakeModel, offsetView } from "../test/fixtures";
import { mount, settle } from "../test/mount";
import { thumbnail } from "./model";

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

  it("asks for each layer's chunk and shows every row loading until it arrives", async () => {
    const model = fakeModel({ layers: 2, preload: "none", traits: { view: "model" } });
    const host = mount(model);
    const rows = [...host.querySelectorAll<HTMLElement>(".aw-mrow[data-layer]")];
    expect(rows.map((r) => r.getAttribute("aria-busy"))).toEqual(["true", "true"]);
    expect(rows[0].textContent).toContain("loading");
    const requests = model.sent();
    expect(requests.map((r) => r.layer)).toEqual([0, 1]);
    model.reply({ kind: "response", id: requests[1].id, what: "attention" }, [offsetView(chunkBytes(1, 3, 8, 8))]);
    await settle();
    expect(rows.map((r) => r.hasAttribute("aria-busy"))).toEqual([true, false]);
    expect(rows[1].textContent).not.toContain("loading");
  });
});

describe("thumbnail", () => {
  it("keeps each pixel's strongest value when shrinking", () => {
    // One head, 4 × 4, a single strong value at (3, 0).
    const bytes = new Uint8Array(16);
    bytes[3 * 4 + 0] = 200;
    bytes[1] = 10;
    const picture = thumbnail(bytes, 0, 4, 4, 2);
    expect(picture).toEqual({ width: 2, height: 2, values: new Uint8Array([10, 0, 200, 0]) });
  });
});
