import { afterEach, describe, expect, it } from "vitest";
import { button } from "./test/dom";
import { fakeModel } from "./test/fixtures";
import { initialize, mount, render } from "./test/mount";
import widget from "./widget";

describe("widget entry", () => {
  it("exports exactly initialize and render", () => {
    expect(Object.keys(widget).sort()).toEqual(["initialize", "render"]);
  });

  it("renders twice independently, both following the model, and cleans up every listener", () => {
    const model = fakeModel();
    const stopInit = initialize(model);
    const afterInit = model.listenerCount();
    const first = render(model);
    const second = render(model);
    button(first.host, "Model").click();
    expect(second.host.querySelector(".aw-modelview")).not.toBeNull();
    first.dispose();
    expect(first.host.childElementCount).toBe(0);
    model.fromPython({ view: "matrix" });
    expect(second.host.querySelector(".aw-matrixview")).not.toBeNull();
    second.dispose();
    expect(model.listenerCount()).toBe(afterInit);
    stopInit();
    expect(model.listenerCount()).toBe(0);
  });

  it("names each select by its own label and sets no element ids, which another copy of the bundle would repeat", () => {
    const first = mount(fakeModel({ traits: { view: "matrix" } }));
    const second = mount(fakeModel({ traits: { view: "matrix" } }));
    expect(document.querySelectorAll("[id]")).toHaveLength(0);
    for (const host of [first, second]) {
      const layer = host.querySelector<HTMLSelectElement>("select[aria-label=Layer]")!;
      expect(layer.closest("label")!.textContent).toMatch(/^Layer/);
    }
  });

  it("binds the view tabs to `view`", () => {
    const model = fakeModel();
    const host = mount(model);
    expect(button(host, "Head").getAttribute("aria-pressed")).toBe("true");
    button(host, "Matrix").click();
    expect(model.get("view")).toBe("matrix");
    expect(button(host, "Matrix").getAttribute("aria-pressed")).toBe("true");
    expect(button(host, "Head").getAttribute("aria-pressed")).toBe("false");
    button(host, "Neuron").click();
    expect(model.get("view")).toBe("neuron");
  });

  it("says plainly when the neuron view has no queries and keys to show", () => {
    const host = mount(fakeModel({ traits: { view: "neuron" } }));
    expect(host.querySelector(".aw-neuronview [role=status]")!.textContent).toMatch(/no queries or keys.*AttentionWidget\(model, text\)/);
  });

  it("says so when there is no data", () => {
    const model = fakeModel();
    model.fromPython({ meta: {} as never });
    const host = mount(model);
    expect(host.textContent).toMatch(/no attention to show/);
  });
});

describe("theme", () => {
  afterEach(() => {
    document.body.removeAttribute("data-jp-theme-light");
    document.body.className = "";
  });

  const root = (host: HTMLElement) => host.querySelector(".attnwidget")!;

  it("follows JupyterLab's theme when auto, live", async () => {
    document.body.setAttribute("data-jp-theme-light", "false");
    const host = mount(fakeModel({ traits: { theme: "auto" } }));
    expect(root(host).classList.contains("attnwidget--dark")).toBe(true);
    document.body.setAttribute("data-jp-theme-light", "true");
    await new Promise((resolve) => setTimeout(resolve, 0)); // MutationObserver delivers asynchronously
    expect(root(host).classList.contains("attnwidget--light")).toBe(true);
  });

  it("follows VS Code's dark and high-contrast themes", () => {
    document.body.className = "vscode-high-contrast";
    expect(root(mount(fakeModel({ traits: { theme: "auto" } }))).classList.contains("attnwidget--dark")).toBe(true);
  });

  it("lets an explicit theme win over the host", () => {
    document.body.setAttribute("data-jp-theme-light", "false");
    const model = fakeModel({ traits: { theme: "light" } });
    const host = mount(model);
    expect(root(host).className).toBe("attnwidget attnwidget--light");
    model.fromPython({ theme: "dark" });
    expect(root(host).className).toBe("attnwidget attnwidget--dark");
  });
});
