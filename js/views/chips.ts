// The row of head buttons ("Head 0", "Head 1", ...) shared by the head and matrix views.

import { css, headColor, textOn } from "../draw/colors";
import { el, listen } from "../draw/dom";
import type { ViewContext } from "./view";

/**
 * "toggle": click shows/hides a head and focuses it, double-click shows it alone (head view).
 * "focus": click only focuses, since one head is drawn at a time (matrix view).
 */
export type ChipMode = "toggle" | "focus";

export interface HeadChips {
  element: HTMLElement;
  update(): void;
  /** Move keyboard focus to the focused head's chip, if it is on a chip now. */
  followFocus(): void;
  dispose(): void;
}

export function headChips(ctx: ViewContext, mode: ChipMode): HeadChips {
  const element = el("div", { class: "aw-chips", role: "group", "aria-label": "Heads" });
  let buttons: HTMLButtonElement[] = [];

  const headOf = (event: Event): number | null => {
    const button = (event.target as HTMLElement).closest<HTMLButtonElement>("button[data-head]");
    return button ? Number(button.dataset.head) : null;
  };
  const cleanups = [
    listen(element, "click", (event) => {
      const head = headOf(event);
      if (head === null) return;
      if (mode === "toggle") ctx.selection.toggleHead(head);
      else ctx.selection.setHead(head);
    }),
    listen(element, "dblclick", (event) => {
      const head = headOf(event);
      if (head !== null && mode === "toggle") ctx.selection.soloHead(head);
    }),
  ];

  function update(): void {
    const count = ctx.selection.info?.stack.heads ?? 0;
    if (buttons.length !== count) {
      buttons = Array.from({ length: count }, (_, head) =>
        el("button", { type: "button", class: "aw-chip", "data-head": head, "aria-label": `Head ${head}` }, String(head)),
      );
      element.replaceChildren(...buttons);
    }
    const { head: focused, heads } = ctx.selection;
    const dark = ctx.dark();
    buttons.forEach((button, head) => {
      const color = headColor(head, count, dark);
      const on = mode === "toggle" ? heads.includes(head) : head === focused;
      button.setAttribute("aria-pressed", String(on));
      button.classList.toggle("aw-chip--focused", head === focused);
      button.style.setProperty("--aw-chip", css(color));
      button.style.setProperty("--aw-chip-text", textOn(color));
      button.title = mode === "toggle" ? `Head ${head}: click to show or hide, double-click to show only this head` : `Head ${head}`;
    });
  }

  function followFocus(): void {
    if (element.contains(document.activeElement)) buttons[ctx.selection.head]?.focus();
  }

  return { element, update, followFocus, dispose: () => cleanups.forEach((off) => off()) };
}
