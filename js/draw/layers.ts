// Offscreen layers a view composites. Each remembers what it shows (a signature naming everything its picture
// depends on) and the extent it was painted for, so a view repaints a layer only when that changed, and can show
// a layer painted for another extent while its repaint waits for a later frame.

import { prepareCanvas } from "./canvas";

export interface Layer<Extent> {
  canvas: HTMLCanvasElement;
  signature: string;
  extent: Extent;
  /** Size in CSS pixels. */
  width: number;
  height: number;
}

export class Layers<Id, Extent> {
  private readonly layers = new Map<Id, Layer<Extent>>();

  /** What layer `id` last showed, if it was ever painted. */
  get(id: Id): Layer<Extent> | undefined {
    return this.layers.get(id);
  }

  /** Repaint layer `id` at `width` × `height` CSS pixels with `paint`; null when there is nothing to paint on. */
  paint(id: Id, signature: string, extent: Extent, width: number, height: number, paint: (g: CanvasRenderingContext2D) => void): Layer<Extent> | null {
    const old = this.layers.get(id);
    const canvas = old?.canvas ?? document.createElement("canvas");
    // Resizing a canvas reallocates its pixels: a layer of the same size is only cleared (a hover repaints them all).
    const g = old && old.width === width && old.height === height ? canvas.getContext("2d") : prepareCanvas(canvas, width, height);
    if (!g) return null;
    g.setTransform(canvas.width / width, 0, 0, canvas.height / height, 0, 0);
    g.clearRect(0, 0, width, height);
    paint(g);
    const layer = { canvas, signature, extent, width, height };
    this.layers.set(id, layer);
    return layer;
  }

  /** Free the layers of ids no longer shown. */
  keepOnly(ids: readonly Id[]): void {
    for (const id of this.layers.keys()) if (!ids.includes(id)) this.layers.delete(id);
  }

  /** Forget every picture (what they show changed under them). */
  clear(): void {
    this.layers.clear();
  }
}
