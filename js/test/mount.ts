// Mount the widget the way anywidget does: initialize once per model, render per view.

import { afterEach } from "vitest";
import widget from "../widget";
import type { FakeModel } from "./fake-model";

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).reverse().forEach((cleanup) => cleanup()));

export function initialize(model: FakeModel): () => void {
  const stop = widget.initialize({ model });
  cleanups.push(stop);
  return stop;
}

export function render(model: FakeModel): { host: HTMLElement; dispose: () => void } {
  const host = document.createElement("div");
  document.body.append(host);
  const stop = widget.render({ model, el: host });
  const dispose = () => {
    stop();
    host.remove();
  };
  cleanups.push(dispose);
  return { host, dispose };
}

/** initialize + render, for tests that need one view. */
export function mount(model: FakeModel): HTMLElement {
  initialize(model);
  return render(model).host;
}

/** Let promise callbacks (chunk loads) run. */
export const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

/** Give boxes a width, since jsdom lays nothing out and views draw only into a sized box. */
export function withLayoutWidth(width: number): () => void {
  // jsdom defines clientWidth (always 0) on Element; a getter on HTMLElement shadows it.
  Object.defineProperty(HTMLElement.prototype, "clientWidth", { configurable: true, get: () => width });
  return () => delete (HTMLElement.prototype as { clientWidth?: number }).clientWidth;
}
