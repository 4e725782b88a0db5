// Page pieces several views build alike: the scrolling box, the hint under a view, and the
// heading with a readout of what the pointer is over beside the colour legend.

import { el } from "../draw/dom";

/** `content` in a box that scrolls when it is taller or wider than the view allows. */
export function scrollBox(content: HTMLElement): HTMLElement {
  const box = el("div", { class: "aw-scroll" });
  box.append(content);
  return box;
}

/** The line under a view saying how to use it. */
export const hintLine = (text: string) => el("p", { class: "aw-hint" }, text);

export interface ReadoutHeading {
  element: HTMLElement;
  /** Where hovering writes the value under the pointer. */
  readout: HTMLElement;
  /** The legend's colour bar, whose background the view sets to its scale. */
  legendBar: HTMLElement;
  /** The legend's high end, which a view with a changing scale rewrites. */
  legendHigh: HTMLElement;
}

/** The readout beside a legend going from `low` to `high`. */
export function readoutHeading(low: string, high: string): ReadoutHeading {
  const readout = el("p", { class: "aw-readout", "aria-live": "polite" });
  const legendBar = el("span", { class: "aw-legend-bar" });
  const legend = el("span", { class: "aw-legend", "aria-hidden": "true" });
  const legendHigh = el("span", {}, high);
  legend.append(el("span", {}, low), legendBar, legendHigh);
  const element = el("div", { class: "aw-matrix-head" });
  element.append(readout, legend);
  return { element, readout, legendBar, legendHigh };
}

/**
 * A <select> named "Layer" for screen readers and tests, inside the <label> that shows the name. No ids: they
 * would collide when two widgets share a page, since each loads its own copy of this module.
 */
export function labelledSelect(text: string): { field: HTMLElement; select: HTMLSelectElement } {
  const select = el("select", { "aria-label": text });
  const field = el("label", { class: "aw-field" });
  field.append(el("span", { class: "aw-field-name" }, text), select);
  return { field, select };
}

/** Replace a select's options only when they differ, so an open select is not rebuilt under the pointer. */
export function setOptions(select: HTMLSelectElement, options: [string, string][]): void {
  const same =
    select.options.length === options.length && options.every(([value, text], i) => select.options[i].value === value && select.options[i].text === text);
  if (!same) select.replaceChildren(...options.map(([value, text]) => el("option", { value }, text)));
}
