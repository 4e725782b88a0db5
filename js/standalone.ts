// Entry of an exported page (built to static/standalone.js, an IIFE inlined in a classic
// <script>): reads the state Python embedded, and mounts the same widget the notebook shows
// against an in-page model instead of a kernel.

import widget from "./widget";
import { PageModel } from "./standalone/page-model";
import { linkSelections } from "./standalone/link";
import { decodeTraits, parseState } from "./standalone/state";

const STATE_SELECTOR = 'script[type="application/json"][data-attnwidget-export]';
/** The element around widgets whose selections are linked (wire.LINKED_PAGE_ATTRIBUTE). */
const LINKED_SELECTOR = "[data-attnwidget-linked]";

async function mount(stateElement: HTMLScriptElement, host: HTMLElement): Promise<PageModel> {
  const { traits, packed } = await decodeTraits(parseState(stateElement.textContent ?? ""));
  const model = new PageModel(traits, packed);
  widget.initialize({ model });
  widget.render({ model, el: host });
  void model.inflateRest();
  return model;
}

const mounted = [...document.querySelectorAll<HTMLScriptElement>(STATE_SELECTOR)].map(async (stateElement) => {
  // The widget mounts into the element right after its state, as export.py writes them.
  const host = stateElement.nextElementSibling as HTMLElement | null;
  if (!host) return null;
  try {
    return { model: await mount(stateElement, host), group: stateElement.closest(LINKED_SELECTOR) };
  } catch (error) {
    const message = document.createElement("p");
    message.className = "attnwidget-export-error";
    message.textContent = `This page could not show its attention: ${(error as Error).message}`;
    host.replaceChildren(message);
    return null;
  }
});

// Widgets side by side (`Comparison.to_html`) follow each other's selection once all have mounted.
Promise.all(mounted).then((widgets) => {
  const groups = new Map<Element, PageModel[]>();
  for (const found of widgets) if (found?.group) groups.set(found.group, [...(groups.get(found.group) ?? []), found.model]);
  for (const models of groups.values()) if (models.length > 1) linkSelections(models);
});
