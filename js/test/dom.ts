// Finding elements the way a user (and the Playwright ui-tests) name them.

export function button(root: ParentNode, name: string): HTMLButtonElement {
  const found = [...root.querySelectorAll<HTMLButtonElement>("button,[role=button]")].filter(
    (b) => (b.getAttribute("aria-label") ?? b.textContent?.trim()) === name,
  );
  if (found.length !== 1) throw new Error(`expected one button named ${JSON.stringify(name)}, found ${found.length}`);
  return found[0];
}

export function labelled(root: ParentNode, label: string): HTMLSelectElement {
  const select = [...root.querySelectorAll<HTMLSelectElement>("select")].find((s) => s.getAttribute("aria-label") === label);
  if (!select) throw new Error(`no control labelled ${JSON.stringify(label)}`);
  return select;
}

export function visible(element: Element): boolean {
  for (let node: Element | null = element; node; node = node.parentElement) if ((node as HTMLElement).hidden) return false;
  return true;
}

export function key(target: Element, key: string): void {
  target.dispatchEvent(new KeyboardEvent("keydown", { key, bubbles: true, cancelable: true }));
}

export function mouse(target: Element, type: string, init: MouseEventInit = {}): void {
  target.dispatchEvent(new MouseEvent(type, { bubbles: true, cancelable: true, ...init }));
}

export function chooseOption(select: HTMLSelectElement, value: string): void {
  select.value = value;
  select.dispatchEvent(new Event("change", { bubbles: true }));
}
