// What every view is given and what it gives back.

import type { ChunkStore, LayerStore } from "../chunks";
import { layerLabel, type WatchedTrait } from "../contract";
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
 * The selected stack and layer's data from `store`: at once when it is here, otherwise null now
 * and `onLoaded` (or `onError`) later, unless the selection moved on meanwhile.
 */
export function selectedLayer<T>(
  selection: Selection,
  store: LayerStore<T>,
  life: Lifetime,
  onLoaded: () => void,
  onError: (message: string) => void,
): T | null {
  const { stack, layer } = selection;
  const ready = store.peek(stack, layer);
  if (ready) return ready;
  life.whenAnswered(store.get(stack, layer), () => selection.stack === stack && selection.layer === layer, onLoaded, onError);
  return null;
}

/** The selected layer's attention chunk, with `status` saying while it loads or why it could not; `redraw` once it is here. */
export function selectedChunk(ctx: ViewContext, life: Lifetime, status: HTMLElement, redraw: () => void): Uint8Array | null {
  const layer = layerLabel(ctx.selection.info?.stack, ctx.selection.layer);
  const bytes = selectedLayer(ctx.selection, ctx.chunks, life, redraw, (message) => {
    status.textContent = `Could not load layer ${layer}: ${message}`;
  });
  status.textContent = bytes ? "" : `Loading layer ${layer}…`;
  return bytes;
}

/** The View a view function returns: its element, update and snapshot, with dispose ending its lifetime. */
export function viewOf(element: HTMLElement, life: Lifetime, update: View["update"], snapshot: View["snapshot"]): View {
  return { element, update, snapshot, dispose: () => life.dispose() };
}
