// What every view is given and what it gives back.

import type { ChunkStore, DataStore } from "../chunks";
import { layerLabel, type WatchedTrait, type Where } from "../contract";
import type { Painter } from "../draw/painter";
import type { Selection } from "../selection";

export interface ViewContext {
  selection: Selection;
  chunks: ChunkStore;
  /** Whether the widget currently shows its dark theme. */
  dark(): boolean;
}

/** What a view hands over for an image: its size in CSS pixels and how to paint itself at (0, 0). */
export interface Snapshot {
  width: number;
  height: number;
  paint(g: Painter): void;
}

export interface View {
  element: HTMLElement;
  /** Bring the view up to date after `trait` changed (undefined: theme or size, redraw all). */
  update(trait?: WatchedTrait): void;
  /** The picture of what the view shows for the selection, for saving as an image; null while it has nothing drawn.
   *  A promise when the picture needs data the view has not loaded (the model view's rows out of sight). */
  snapshot(): Snapshot | null | Promise<Snapshot | null>;
  dispose(): void;
}

/**
 * A view's lifetime: the listeners and observers to undo on dispose, and whether answers that
 * arrive later (chunks, records) should still be drawn.
 */
export class Lifetime {
  private alive = true;
  private readonly cleanups: Array<() => void> = [];

  add(...cleanups: Array<() => void>): void {
    this.cleanups.push(...cleanups);
  }

  /**
   * The outcome of `answer` to `onValue` or `onError`, unless by the time it arrives the view
   * was disposed or `stillWanted()` says the view has moved on: a late answer must not draw.
   */
  whenAnswered<T>(answer: Promise<T>, stillWanted: () => boolean, onValue: (value: T) => void, onError: (message: string) => void): void {
    const wanted = () => this.alive && stillWanted();
    answer.then(
      (value) => wanted() && onValue(value),
      (error: Error) => wanted() && onError(error.message),
    );
  }

  dispose(): void {
    this.alive = false;
    this.cleanups.forEach((cleanup) => cleanup());
  }
}

/**
 * `where`'s data from `store`: at once when it is here, otherwise null now and `onLoaded` (or `onError`) later,
 * unless the selection moved to another stack or layer meanwhile.
 */
export function selectedData<T>(
  selection: Selection,
  store: DataStore<T>,
  where: Where,
  life: Lifetime,
  onLoaded: () => void,
  onError: (message: string) => void,
): T | null {
  const ready = store.peek(where);
  if (ready) return ready;
  const wanted = () => selection.stack === where.stack && selection.layer === where.layer;
  life.whenAnswered(store.get(where), wanted, onLoaded, onError);
  return null;
}

/** The focused head's data from `store`, such as its query-key record (see `selectedData`). */
export function selectedFocus<T>(
  selection: Selection,
  store: DataStore<T>,
  life: Lifetime,
  onLoaded: () => void,
  onError: (message: string) => void,
): T | null {
  const where = { stack: selection.stack, layer: selection.layer, head: selection.head };
  return selectedData(selection, store, where, life, onLoaded, onError);
}

/** The attention of `heads` of the selected layer that is here, asking for the rest, with `status` saying while
 *  they load or why they could not; `redraw` as each arrives. */
export function selectedHeads(ctx: ViewContext, life: Lifetime, status: HTMLElement, redraw: () => void, heads: readonly number[]): Map<number, Uint8Array> {
  const { selection } = ctx;
  const layer = layerLabel(selection.info?.stack, selection.layer);
  const found = new Map<number, Uint8Array>();
  let failed: string | null = null;
  for (const head of heads) {
    const where = { stack: selection.stack, layer: selection.layer, head };
    const bytes = selectedData(selection, ctx.chunks, where, life, redraw, (message) => {
      failed = `Could not load layer ${layer}: ${message}`;
      status.textContent = failed;
    });
    if (bytes) found.set(head, bytes);
  }
  if (!failed) status.textContent = found.size === heads.length ? "" : `Loading layer ${layer}…`;
  return found;
}

/** The View a view function returns: its element, update and snapshot, with dispose ending its lifetime. */
export function viewOf(element: HTMLElement, life: Lifetime, update: View["update"], snapshot: View["snapshot"]): View {
  return { element, update, snapshot, dispose: () => life.dispose() };
}
