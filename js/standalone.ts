// Entry of an exported page (built to static/standalone.js, an IIFE inlined in a classic
// <script>): reads the state Python embedded, and mounts the same widget the notebook shows
// against an in-page model instead of a kernel.

import widget from "./widget";
import { PageModel } from "./standalone/page-model";
import { decodeTraits, parseState } from "./standalone/state";

const STATE_SELECTOR = 'script[type="application/json"][data-attnwidget-export]';

async function mount(stateElement: HTMLScriptElement, host: HTMLElement): Promise<void> {
  const { traits, packed } = await decodeTraits(parseState(stateElement.textContent ?? ""));
  const model = new PageModel(traits, packed);
  widget.initialize({ model });
  widget.render({ model, el: host });
  void model.inflateRest();
}

for (const stateElement of document.querySelectorAll<HTMLScriptElement>(STATE_SELECTOR)) {
  // The widget mounts into the element right after its state, as export.py writes them.
  const host = stateElement.nextElementSibling as HTMLElement | null;
  if (!host) continue;
  mount(stateElement, host).catch((error: Error) => {
    const message = document.createElement("p");
    message.className = "attnwidget-export-error";
    message.textContent = `This page could not show its attention: ${error.message}`;
    host.replaceChildren(message);
  });
}
