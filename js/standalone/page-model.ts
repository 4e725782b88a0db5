// The anywidget model of an exported page, where no kernel is listening: it keeps the traits
// in memory, fires change events like Backbone, and answers every request itself. A head the page
// holds packed is inflated into its trait, whose change event gives it to the views; what the page
// does not hold gets an error, since it cannot be computed any more.

import {
  KIND,
  WHAT,
  keyOf,
  layerLabel,
  stackInfo,
  type Binary,
  type BinaryTrait,
  type CustomMessageHandler,
  type ImageAnswer,
  type DataKind,
  type Meta,
  type Request,
  type Traits,
  type WidgetModel,
  type WritableTrait,
} from "../contract";
import { unpack, type Packed } from "./state";

type Callback = (...args: any[]) => void;

export class PageModel implements WidgetModel {
  private listeners = new Map<string, Set<Callback>>();
  /** Keys asked for in this turn, by trait: inflated together. */
  private readonly batches = new Map<BinaryTrait, string[]>();
  /** The requests waiting for each value being inflated, by "<trait> <key>". */
  private readonly inflating = new Map<string, number[]>();

  /** `packed`: what the page holds but `traits` does not yet, inflated when a view first asks for it. */
  constructor(
    private readonly traits: Traits,
    private readonly packed: Packed = {},
  ) {
    // The stores take a key missing from a complete trait for left out, and would not ask for a packed one.
    const meta = traits.meta;
    if (Object.keys(packed._chunks ?? {}).length) traits.meta = { ...meta, chunks_complete: false };
    if (meta.query_key && Object.keys(packed._qk ?? {}).length) {
      traits.meta = { ...traits.meta, query_key: { ...meta.query_key, complete: false } };
    }
  }

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
    // Tiles and top keys of a head the page holds come from its chunk, which the views prefer once it is here.
    const trait: BinaryTrait = content.what === WHAT.queryKey ? "_qk" : "_chunks";
    const key = keyOf(content);
    if (this.packed[trait]?.[key] !== undefined) return this.unpack(trait, key, content.id);
    const error = missingData(content, this.traits.meta);
    // Answered later, as a kernel would: the asker registers its request before sending.
    queueMicrotask(() => this.emit("msg:custom", { kind: KIND.response, id: content.id, error }, [] as Binary[]));
  }

  /** Inflates what the page still holds packed, one value per idle moment of the page, in the page's order (the
   *  export's: the heads on screen first), so that later switches find them here: a 4096-token head takes about
   *  0.1 s to inflate, which a click waiting behind it would feel. */
  async inflateRest(idle: () => Promise<void> = nextIdle): Promise<void> {
    for (const [trait, values] of Object.entries(this.packed) as [BinaryTrait, Record<string, string>][]) {
      for (const key of Object.keys(values)) {
        await idle();
        if (!(key in values) || this.inflating.has(`${trait} ${key}`)) continue; // asked for meanwhile
        this.inflating.set(`${trait} ${key}`, []);
        await this.inflate(trait, [key]);
      }
    }
  }

  /** Inflates the value into its trait, with the others asked for in the same turn (a view asks for every head it
   *  shows at once). */
  private unpack(trait: BinaryTrait, key: string, id: number): void {
    const waiting = this.inflating.get(`${trait} ${key}`);
    if (waiting) return void waiting.push(id);
    this.inflating.set(`${trait} ${key}`, [id]);
    const batch = this.batches.get(trait) ?? [];
    if (!batch.length) {
      this.batches.set(trait, batch);
      queueMicrotask(() => {
        this.batches.delete(trait); // what is asked for from now on is the next batch
        void this.inflate(trait, batch);
      });
    }
    batch.push(key);
  }

  /** Puts the values in their trait; fires its change event, which settles the stores' requests and redraws the
   *  views, only when some request waits for one of them. */
  private async inflate(trait: BinaryTrait, keys: string[]): Promise<void> {
    const waiting = () => keys.flatMap((key) => this.inflating.get(`${trait} ${key}`) ?? []);
    try {
      const values = await Promise.all(keys.map(async (key) => [key, await unpack(this.packed[trait]![key])] as const));
      this.traits[trait] = { ...this.traits[trait], ...Object.fromEntries(values) };
      keys.forEach((key) => delete this.packed[trait]![key]);
      if (waiting().length) this.emit(`change:${trait}`);
    } catch (error) {
      const message = `this page's data is damaged (${(error as Error).message}); export it again`;
      waiting().forEach((id) => this.emit("msg:custom", { kind: KIND.response, id, error: message }, []));
    } finally {
      keys.forEach((key) => this.inflating.delete(`${trait} ${key}`));
    }
  }

  private emit(event: string, ...args: Parameters<CustomMessageHandler> | []): void {
    this.listeners.get(event)?.forEach((callback) => callback(...args));
  }
}

/** Resolves when the page has nothing else to do (where the browser can tell). */
const nextIdle = (): Promise<void> =>
  new Promise((resolve) =>
    typeof requestIdleCallback === "function" ? requestIdleCallback(() => resolve()) : setTimeout(resolve, 50),
  );

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
