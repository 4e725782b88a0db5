// The generation step control of a widget made by `AttentionWidget.generate`: a slider over the steps, with
// "[" and "]" for the previous and next step, and a line naming the step and the token it produced. Moving it
// sets `step`, which selects that step's query row as the token (selection.ts); other widgets hide it.

import { stepRow } from "../contract";
import { el, listen, listenKeys } from "../draw/dom";
import type { Selection } from "../selection";

export interface StepControl {
  element: HTMLElement;
  update(): void;
  dispose(): void;
}

/** The control, and the "[" / "]" keys on `keyTarget` (the widget, so they work wherever focus is inside it). */
export function stepControl(selection: Selection, keyTarget: HTMLElement): StepControl {
  const element = el("div", { class: "aw-step", role: "group", "aria-label": "Generation steps" });
  const previous = el("button", { type: "button", class: "aw-step-move", title: "Previous step ([)", "aria-label": "Previous step" }, "‹");
  const slider = el("input", { type: "range", class: "aw-step-slider", min: 0, step: 1, "aria-label": "Generation step" });
  const next = el("button", { type: "button", class: "aw-step-move", title: "Next step (])", "aria-label": "Next step" }, "›");
  const label = el("span", { class: "aw-step-label", "aria-live": "polite" });
  element.append(el("span", { class: "aw-field-name" }, "Generation"), previous, slider, next, label);

  /** From the selected step, or from before the first one when none is (a prompt token): -1 + 1 is step 0. */
  const move = (by: number) => selection.setStep((selection.step ?? (by > 0 ? -1 : selection.generation?.steps ?? 0)) + by);
  const cleanups = [
    listen(slider, "input", () => selection.setStep(Number(slider.value))),
    listen(previous, "click", () => move(-1)),
    listen(next, "click", () => move(1)),
    listenKeys(keyTarget, () => (selection.generation ? { "[": () => move(-1), "]": () => move(1) } : null)),
    // The slider's own keys, handled here: JupyterLab's shortcuts would otherwise take the arrows first.
    listenKeys(slider, () => ({
      ArrowLeft: () => move(-1),
      ArrowDown: () => move(-1),
      ArrowRight: () => move(1),
      ArrowUp: () => move(1),
      Home: () => selection.setStep(0),
      End: () => selection.setStep((selection.generation?.steps ?? 1) - 1),
    })),
  ];

  function update(): void {
    const generation = selection.generation;
    element.hidden = !generation;
    if (!generation) return;
    const step = selection.step;
    const last = generation.steps - 1;
    slider.max = String(last);
    slider.value = String(step ?? 0);
    slider.classList.toggle("aw-step-slider--none", step === null);
    slider.setAttribute("aria-valuetext", step === null ? "no step" : `step ${step}`);
    previous.disabled = step === 0;
    next.disabled = step === last;
    const produced = step === null ? null : selection.meta?.sides[generation.side]?.tokens[stepRow(generation, step) + 1];
    // The token is the user's text: textContent only (el and this assignment), never markup.
    label.textContent =
      step === null
        ? `no step selected (${generation.steps} in all): move the slider or press ]`
        : `step ${step} of ${generation.steps}: '${produced ?? ""}'`;
  }

  return { element, update, dispose: () => cleanups.forEach((off) => off()) };
}
