// An in-memory stand-in for the anywidget model: it keeps trait values, fires change:
// events like Backbone (synchronously, only on a real change) and records what the views ask.

import type { Binary, Traits, WidgetModel, WritableTrait } from "../contract";

type Callback = (...args: any[]) => void;
export type Call = { method: "set"; key: string; value: unknown } | { method: "save_changes" } | { method: "send"; content: unknown };

export class FakeModel implements WidgetModel {
  calls: Call[] = [];
  private listeners = new Map<string, Set<Callback>>();

  constructor(private state: Traits) {}

  get<K extends keyof Traits>(key: K): Traits[K] {
    return this.state[key];
  }

  set<K extends WritableTrait>(key: K, value: Traits[K]): void {
    this.calls.push({ method: "set", key, value });
    this.assign(key, value);
  }

  save_changes(): void {
    this.calls.push({ method: "save_changes" });
  }

  send(content: unknown): void {
    this.calls.push({ method: "send", content });
  }

  on(event: string, callback: Callback): void {
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    this.listeners.get(event)!.add(callback);
  }

  off(event: string, callback: Callback): void {
    this.listeners.get(event)?.delete(callback);
  }

  /** Python changed traits in one message: like Backbone, all values land before any change event fires. */
  fromPython(values: Partial<Traits>): void {
    const changed = Object.keys(values).filter((key) => this.differs(key as keyof Traits, values[key as keyof Traits]));
    Object.assign(this.state, values);
    for (const key of changed) this.listeners.get(`change:${key}`)?.forEach((callback) => callback());
  }

  /** Python sent a custom message. */
  reply(content: unknown, buffers: Binary[] = []): void {
    this.listeners.get("msg:custom")?.forEach((callback) => callback(content, buffers));
  }

  listenerCount(): number {
    return [...this.listeners.values()].reduce((sum, set) => sum + set.size, 0);
  }

  sent(): any[] {
    return this.calls.flatMap((call) => (call.method === "send" ? [call.content] : []));
  }

  /** The values written since the last call, in order, and whether each batch was saved. */
  takeWrites(): { writes: Record<string, unknown>; saves: number } {
    const writes: Record<string, unknown> = {};
    let saves = 0;
    for (const call of this.calls) {
      if (call.method === "set") writes[call.key] = call.value;
      if (call.method === "save_changes") saves++;
    }
    this.calls = this.calls.filter((call) => call.method === "send");
    return { writes, saves };
  }

  private assign<K extends keyof Traits>(key: K, value: Traits[K]): void {
    if (!this.differs(key, value)) return;
    this.state[key] = value;
    this.listeners.get(`change:${key}`)?.forEach((callback) => callback());
  }

  /** Objects (meta, _chunks) always count as new, as they arrive as new objects from Python. */
  private differs(key: keyof Traits, value: unknown): boolean {
    const isObject = value instanceof Object && !Array.isArray(value);
    return isObject || JSON.stringify(this.state[key]) !== JSON.stringify(value);
  }
}
