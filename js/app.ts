// One rendering of the widget: toolbar (view tabs, stack with its weights and words, layer, pair filter) and, for a
// generated capture, the step control above the visible view, all reading and writing the one Selection.

import type { ChunkStore } from "./chunks";
import { derivedControls } from "./controls/derived";
import { stepControl } from "./controls/step";
import {
  IMAGE_FORMATS,
  PAIR_FILTERS,
  layerLabel,
  pairFilterApplies,
  type ImageFormat,
  type PairFilter,
  type ViewName,
  type WatchedTrait,
  type WidgetModel,
} from "./contract";
import { el, listen } from "./draw/dom";
import { PAIR_NAMES } from "./draw/format";
import { answerImageRequests, download, makeImage } from "./image/save";
import { Selection } from "./selection";
import { isDark, watchHostTheme } from "./theme";
import { headView } from "./views/head";
import { matrixView } from "./views/matrix";
import { modelView } from "./views/model";
import { neuronView } from "./views/neuron";
import { labelledSelect, setOptions } from "./views/parts";
import type { View, ViewContext } from "./views/view";

export const ROOT_CLASS = "attnwidget";

const TABS: { view: ViewName; label: string }[] = [
  { view: "head", label: "Head" },
  { view: "model", label: "Model" },
  { view: "neuron", label: "Neuron" },
  { view: "matrix", label: "Matrix" },
];
const VIEWS: Record<ViewName, (ctx: ViewContext) => View> = {
  head: headView,
  model: modelView,
  neuron: neuronView,
  matrix: matrixView,
};

/** Mount the widget into `host`; returns the cleanup that removes it and every listener. */
export function mountApp(host: HTMLElement, model: WidgetModel, chunks: ChunkStore): () => void {
  const selection = new Selection(model);
  const root = el("div", { class: ROOT_CLASS });
  const ctx: ViewContext = { selection, chunks, dark: () => root.classList.contains(`${ROOT_CLASS}--dark`) };

  const tabs = el("div", { class: "aw-tabs", role: "group", "aria-label": "Views" });
  const tabButtons = TABS.map(({ view, label }) => el("button", { type: "button", class: "aw-tab", "data-view": view }, label));
  tabs.append(...tabButtons);
  const stackChoice = derivedControls(selection);
  const layerField = labelledSelect("Layer");
  const pairField = labelledSelect("Pair filter");
  setOptions(pairField.select, PAIR_FILTERS.map((filter) => [filter, PAIR_NAMES[filter]]));
  const controls = el("div", { class: "aw-controls" });
  controls.append(...stackChoice.fields, layerField.field, pairField.field);
  // Save buttons: a picture of the current view with its selection (js/image/).
  const saveGroup = el("div", { class: "aw-save", role: "group", "aria-label": "Save image" });
  const saveButtons = IMAGE_FORMATS.map((format) =>
    el(
      "button",
      { type: "button", class: "aw-save-button", "data-format": format, title: `Save the current view as ${format.toUpperCase()}` },
      `Save ${format.toUpperCase()}`,
    ),
  );
  const saveStatus = el("span", { class: "aw-save-status", role: "status" });
  saveGroup.append(...saveButtons, saveStatus);
  controls.append(saveGroup);
  const toolbar = el("div", { class: "aw-toolbar" });
  toolbar.append(tabs, controls);
  const steps = stepControl(selection, root);
  const body = el("div", { class: "aw-body" });
  const empty = el("p", { class: "aw-status" }, "This widget has no attention to show.");
  root.append(toolbar, steps.element, body);
  host.append(root);

  let current: { name: ViewName; view: View } | null = null;
  const picture = (format: ImageFormat, scale?: number) => makeImage(selection, current?.view.snapshot() ?? null, ctx.dark(), format, scale);

  function showView(): void {
    const name = selection.view;
    if (current?.name === name) return;
    current?.view.dispose();
    const view = VIEWS[name](ctx);
    current = { name, view };
    body.replaceChildren(view.element);
  }

  function updateToolbar(): void {
    const info = selection.info;
    tabButtons.forEach((button) => button.setAttribute("aria-pressed", String(button.dataset.view === selection.view)));
    stackChoice.update();
    // The value is the index the `layer` trait holds; the text is the model's own layer number.
    setOptions(layerField.select, Array.from({ length: info?.stack.layers ?? 0 }, (_, l) => [String(l), layerLabel(info?.stack, l)]));
    layerField.select.value = String(selection.layer);
    layerField.field.hidden = !info;
    pairField.field.hidden = selection.view !== "head" || !pairFilterApplies(info);
    pairField.select.value = selection.pairFilter;
    steps.update();
  }

  function applyTheme(): void {
    const dark = isDark(selection.theme);
    root.classList.toggle(`${ROOT_CLASS}--dark`, dark);
    root.classList.toggle(`${ROOT_CLASS}--light`, !dark);
  }

  function update(trait?: WatchedTrait): void {
    if (!selection.meta) {
      current?.view.dispose();
      current = null;
      body.replaceChildren(empty);
      updateToolbar();
      return;
    }
    if (trait === "theme" || trait === undefined) applyTheme();
    updateToolbar();
    const before = current;
    showView();
    // A freshly made view has drawn itself already.
    if (current === before) current?.view.update(trait === "theme" ? undefined : trait);
  }

  const cleanups = [
    selection.subscribe(update),
    watchHostTheme(() => {
      if (selection.theme !== "auto") return;
      applyTheme();
      current?.view.update();
    }),
    listen(tabs, "click", (event) => {
      const button = (event.target as HTMLElement).closest<HTMLButtonElement>("button[data-view]");
      if (button && !button.disabled) selection.setView(button.dataset.view as ViewName);
    }),
    listen(layerField.select, "change", () => selection.setLayer(Number(layerField.select.value))),
    listen(pairField.select, "change", () => selection.setPairFilter(pairField.select.value as PairFilter)),
    listen(saveGroup, "click", (event) => {
      const button = (event.target as HTMLElement).closest<HTMLButtonElement>("button[data-format]");
      if (!button) return;
      saveStatus.textContent = "";
      picture(button.dataset.format as ImageFormat).then(
        (image) => download(image.blob, image.fileName),
        (error: Error) => (saveStatus.textContent = `Could not save: ${error.message}`),
      );
    }),
    answerImageRequests(model, picture),
    steps.dispose,
    stackChoice.dispose,
  ];

  update();
  return () => {
    cleanups.forEach((cleanup) => cleanup());
    current?.view.dispose();
    selection.dispose();
    root.remove();
  };
}
