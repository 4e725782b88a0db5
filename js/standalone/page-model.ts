// The anywidget model of an exported page, where no kernel is listening: it keeps the traits
// in memory, fires change events like Backbone, and answers every request itself, with an
// error, since whatever the page does not hold cannot be computed any more.

import {
  KIND,
  WHAT,
  layerLabel,
  stackInfo,
  type Binary,
  type CustomMessageHandler,
  type ImageAnswer,
  type DataKind,
  type Meta,
  type Request,
  type Traits,
  type WidgetModel,
  type WritableTrait,
} from "../contract";

type Callback = (...args: any[]) => void;

export class PageModel implements WidgetModel {
  private listeners = new Map<string, Set<Callback>>();

  constructor(private readonly traits: Traits) {}

  get<K extends keyof Traits>(key: K): Traits[K] {
    return this.traits[key];
  }

  set<K extends WritableTrait>(key: K, value: Traits[K]): void {
    if (JSON.stringify(this.traits[key]) === JSON.stringify(value)) return;
    this.traits[key] = value;
    this.emit(`change:${key}`);
  }

  /** Nothing to save to: the page's state lives as long as the page. */
  save_changes(): void {}

  on(event: string, callback: Callback): void {
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    this.listeners.get(event)!.add(callback);
  }

  off(event: string, callback: Callback): void {
    this.listeners.get(event)?.delete(callback);
  }

  send(content: Request | ImageAnswer): void {
    // Only Python asks for images, and no Python is here: nothing to answer.
    if (content.kind !== KIND.request) return;
    const error = missingData(content, this.traits.meta);
    // Answered later, as a kernel would: the asker registers its request before sending.
    queueMicrotask(() => this.emit("msg:custom", { kind: KIND.response, id: content.id, error }, [] as Binary[]));
  }

  private emit(event: string, ...args: Parameters<CustomMessageHandler> | []): void {
    this.listeners.get(event)?.forEach((callback) => callback(...args));
  }
}

const DATA_NAMES: Record<DataKind, string> = {
  [WHAT.attention]: "the attention",
  [WHAT.queryKey]: "the queries and keys",
  [WHAT.tile]: "the attention",
  [WHAT.topKeys]: "the attention",
};

function missingData({ what, stack, layer, head }: Request, meta: Meta): string {
  const name = layerLabel(stackInfo(meta, stack)?.stack, layer);
  const of = head === undefined ? `layer ${name}` : `head ${head} of layer ${name}`;
  return `this export leaves out ${DATA_NAMES[what]} of ${of} (${stack}) to stay under its size budget`;
}
