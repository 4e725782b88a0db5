// Element building. Text goes in through textContent only: tokens are data from the
// user's text and must never be parsed as markup.

type Attributes = Record<string, string | number | boolean | null | undefined>;

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  text?: string,
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = String(value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  if (text !== undefined) node.textContent = text;
  return node;
}

/** addEventListener that returns its own removal, so views can collect cleanups. */
export function listen<K extends keyof HTMLElementEventMap>(
  target: HTMLElement,
  type: K,
  handler: (event: HTMLElementEventMap[K]) => void,
): () => void {
  target.addEventListener(type, handler);
  return () => target.removeEventListener(type, handler);
}

/**
 * Key bindings on `target`, read at each key press (null: none now). A bound key pressed without
 * Alt, Ctrl or Meta runs its action and goes no further. Returns the removal.
 */
export function listenKeys(target: HTMLElement, bindings: () => Record<string, () => void> | null): () => void {
  return listen(target, "keydown", (event) => {
    const action = bindings()?.[event.key];
    if (!action || event.altKey || event.ctrlKey || event.metaKey) return;
    // Keys used here must not also scroll the page or move between notebook cells.
    event.preventDefault();
    event.stopPropagation();
    action();
  });
}
