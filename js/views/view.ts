// What every view is given and what it gives back.

import type { ChunkStore } from "../chunks";
import type { WatchedTrait } from "../contract";
import type { Snapshot } from "../image/snapshot";
import type { Selection } from "../selection";

export interface ViewContext {
  selection: Selection;
  chunks: ChunkStore;
  /** Whether the widget currently shows its dark theme. */
  dark(): boolean;
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
 * The chunk of the selected stack and layer: at once when it is here, otherwise null now
 * and `onLoaded` later, unless the selection moved on meanwhile or the view was disposed.
 */
export function selectedChunk(
  ctx: ViewContext,
  onLoaded: () => void,
  onError: (message: string) => void,
  alive: () => boolean,
): Uint8Array | null {
  const { stack, layer } = ctx.selection;
  const ready = ctx.chunks.peek(stack, layer);
  if (ready) return ready;
  ctx.chunks.get(stack, layer).then(
    () => {
      if (alive() && ctx.selection.stack === stack && ctx.selection.layer === layer) onLoaded();
    },
    (error: Error) => {
      if (alive() && ctx.selection.stack === stack && ctx.selection.layer === layer) onError(error.message);
    },
  );
  return null;
}

/**
 * A view's lifetime: the listeners and observers to undo on dispose, and whether answers that
 * arrive later (chunks, records) should still be drawn.
 */
export class Lifetime {
  alive = true;
  private readonly cleanups: Array<() => void> = [];

  add(...cleanups: Array<() => void>): void {
    this.cleanups.push(...cleanups);
  }

  dispose(): void {
    this.alive = false;
    this.cleanups.forEach((cleanup) => cleanup());
  }
}
