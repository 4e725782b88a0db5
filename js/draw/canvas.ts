// Canvas sizing. A canvas is always placed absolutely inside a box whose size comes from
// the page layout, and is sized from that box: the canvas never drives the layout, so
// resizing it cannot trigger another resize.

/** Browsers refuse or blank canvases beyond roughly this many pixels per side. */
const MAX_BACKING_PIXELS = 16384;

/**
 * Give the canvas a CSS size and a backing store at device resolution (reduced when that
 * would exceed the browser limit). Returns a context drawing in CSS pixels, or null when
 * there is nothing to draw on (zero size, or no 2D context as in jsdom).
 */
export function prepareCanvas(canvas: HTMLCanvasElement, width: number, height: number): CanvasRenderingContext2D | null {
  if (width <= 0 || height <= 0) return null;
  const wanted = typeof devicePixelRatio === "number" && devicePixelRatio > 0 ? devicePixelRatio : 1;
  const scale = Math.min(wanted, MAX_BACKING_PIXELS / width, MAX_BACKING_PIXELS / height);
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  canvas.width = Math.max(1, Math.round(width * scale));
  canvas.height = Math.max(1, Math.round(height * scale));
  const ctx = canvas.getContext("2d");
  if (!ctx) return null;
  ctx.setTransform(canvas.width / width, 0, 0, canvas.height / height, 0, 0);
  return ctx;
}

/**
 * Call `onResize(width, height)` when the box changes size, at most once per frame, and once
 * at the start. Returns the cleanup.
 */
export function observeSize(box: HTMLElement, onResize: (width: number, height: number) => void): () => void {
  let last = "";
  let frame = 0;
  const measure = () => {
    frame = 0;
    const width = Math.floor(box.clientWidth);
    const height = Math.floor(box.clientHeight);
    const size = `${width}x${height}`;
    if (size === last) return;
    last = size;
    onResize(width, height);
  };
  measure();
  if (typeof ResizeObserver === "undefined") return () => {};
  const observer = new ResizeObserver(() => {
    // Measuring in the next frame coalesces bursts and avoids "ResizeObserver loop" errors.
    if (!frame) frame = requestAnimationFrame(measure);
  });
  observer.observe(box);
  return () => {
    observer.disconnect();
    if (frame) cancelAnimationFrame(frame);
  };
}

/** Put an n-column × m-row RGBA image on an offscreen canvas, to be scaled with drawImage. */
export function imageCanvas(width: number, height: number, fill: (data: Uint8ClampedArray) => void): HTMLCanvasElement | null {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  if (!ctx) return null;
  const image = ctx.createImageData(width, height);
  fill(image.data);
  ctx.putImageData(image, 0, 0);
  return canvas;
}

let measurer: CanvasRenderingContext2D | null | undefined;

/** Width of a label in CSS pixels; a rough estimate where canvases cannot measure (jsdom). */
export function textWidth(text: string, font: string): number {
  if (measurer === undefined) measurer = document.createElement("canvas").getContext("2d");
  if (!measurer) return 7 * text.length;
  measurer.font = font;
  return measurer.measureText(text).width;
}

/**
 * `text` cut with "…" to fit `maxWidth`, as the page's `text-overflow: ellipsis` cuts labels, so a
 * picture is never stretched, nor a label squeezed to a smear, by a very long token.
 */
export function fitText(text: string, font: string, maxWidth: number): string {
  if (textWidth(text, font) <= maxWidth) return text;
  // No visible character is narrower than a pixel: what lies beyond maxWidth characters is never shown.
  const chars = Array.from(text.slice(0, Math.max(0, Math.ceil(maxWidth)) + 1));
  let [fits, tooLong] = [0, chars.length];
  while (tooLong - fits > 1) {
    const middle = (fits + tooLong) >> 1;
    if (textWidth(chars.slice(0, middle).join("") + "…", font) <= maxWidth) fits = middle;
    else tooLong = middle;
  }
  return chars.slice(0, fits).join("") + "…";
}
