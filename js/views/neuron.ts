// Neuron view placeholder: Python may still select it, so say plainly what is missing.

import { el } from "../draw/dom";
import type { View } from "./view";

export const NEURON_PENDING = "The neuron view needs the queries and keys of the model; it is coming in a later version.";

export function neuronView(): View {
  const element = el("section", { class: "aw-view aw-neuronview", "aria-label": "Neuron view" });
  element.append(el("p", { class: "aw-status" }, NEURON_PENDING));
  return { element, update() {}, dispose() {} };
}
