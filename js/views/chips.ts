// The row of head buttons ("Head 0", "Head 1", ...) shared by the head, matrix and neuron views.

import { css, headColor, textOn } from "../draw/colors";
import { el, listen, listenKeys } from "../draw/dom";
import type { ViewContext } from "./view";

/**
 * "show" (head view, where several heads are drawn at once): a click focuses the head and shows
 * it alone, so the picture visibly changes; shift-click, or Space on a chip, shows or hides it
 * (BertViz's click); "All" shows every head again.
 * "focus": a click only focuses, since one head is drawn at a time (matrix and neuron views).
 */
export type ChipMode = "show" | "focus";

/** The head view's gestures, for its help line and the chips' titles. */
export const SHOW_GESTURES = "click a head to show it alone, shift-click or Space to show or hide it, All for every head";

export interface HeadChips {
  element: HTMLElement;
  update(): void;
  /** Move keyboard focus to the focused head's chip, if it is on a chip now. */
  followFocus(): void;
  dispose(): void;
}

export function headChips(ctx: ViewContext, mode: ChipMode): HeadChips {
  const element = el("div", { class: "aw-chips", role: "group", "aria-label": "Heads" });
  const label = el("span", { class: "aw-chips-label", "aria-hidden": "true" }, "Heads");
  const all = el("button", { type: "button", class: "aw-chip aw-chip--all", title: "Show every head" }, "All");
  let buttons: HTMLButtonElement[] = [];

  const headOf = (event: Event): number | null => {
    const button = (event.target as HTMLElement).closest<HTMLButtonElement>("button[data-head]");
    return button ? Number(button.dataset.head) : null;
  };
  const cleanups = [
    listen(element, "click", (event) => {
      if (event.target instanceof Node && all.contains(event.target)) return ctx.selection.showAllHeads();
      const head = headOf(event);
      if (head === null) return;
      if (mode === "focus") ctx.selection.setHead(head);
      else if (event.shiftKey) ctx.selection.toggleHead(head);
      else ctx.selection.soloHead(head);
    }),
    listenKeys(element, () => {
      const head = mode === "show" ? buttons.indexOf(document.activeElement as HTMLButtonElement) : -1;
      return head < 0 ? null : { " ": () => ctx.selection.toggleHead(head) };
    }),
  ];

  function update(): void {
    const count = ctx.selection.info?.stack.heads ?? 0;
    if (buttons.length !== count) {
      buttons = Array.from({ length: count }, (_, head) =>
        el("button", { type: "button", class: "aw-chip", "data-head": head, "aria-label": `Head ${head}` }, String(head)),
      );
      element.replaceChildren(label, ...buttons, ...(mode === "show" ? [all] : []));
    }
    const { head: focused, heads } = ctx.selection;
    const dark = ctx.dark();
    all.disabled = heads.length === count;
    buttons.forEach((button, head) => {
      const color = headColor(head, count, dark);
      const on = mode === "show" ? heads.includes(head) : head === focused;
      button.setAttribute("aria-pressed", String(on));
      button.classList.toggle("aw-chip--focused", head === focused);
      button.style.setProperty("--aw-chip", css(color));
      button.style.setProperty("--aw-chip-text", textOn(color));
      button.title = mode === "show" ? `Head ${head}: ${SHOW_GESTURES}` : `Head ${head}`;
    });
  }

  function followFocus(): void {
    if (element.contains(document.activeElement)) buttons[ctx.selection.head]?.focus();
  }

  return { element, update, followFocus, dispose: () => cleanups.forEach((off) => off()) };
}
