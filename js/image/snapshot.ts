// A picture of the current view with its selection, as SVG text or a PNG blob. The view
// gives a Snapshot (its size and how to paint itself); this module frames it with a
// caption saying what is shown, on the theme's background.

import type { Selection } from "../selection";
import { textWidth } from "../draw/canvas";
import { css, headColor, paper, textOn } from "../draw/colors";
import { headList } from "../views/neuron";
import { SvgPainter, type Painter } from "./svg";

export type ImageFormat = "png" | "svg";
export const IMAGE_FORMATS: readonly ImageFormat[] = ["png", "svg"];

/** What a view hands over for an image: its size in CSS pixels and how to paint itself at (0, 0). */
export interface Snapshot {
  width: number;
  height: number;
  paint(g: Painter): void;
}

/** Pixels per CSS pixel of a PNG: sharp in print, whatever the screen. */
export const PNG_SCALE = 2;
const MAX_SIDE = 16384; // browsers refuse larger canvases
const MAX_AREA = 120_000_000;
const MARGIN = 12;
const CAPTION_FONT = "600 13px system-ui, -apple-system, 'Segoe UI', sans-serif";
const CAPTION_HEIGHT = 26;

/** Ink of text on each theme, as the widget's stylesheet has it. */
export const ink = (dark: boolean) => ({ text: dark ? "#e6e8eb" : "#1f2328", muted: dark ? "#8b939e" : "#6e7781" });

/** Tokens in pictures, in the page's token font. */
export const TOKEN_FONT = "12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace";
const TOKEN_PAD = 6;

/** Width of a column that holds every token (bold, as a pinned one is drawn), with padding. */
export function tokenColumnWidth(tokens: string[]): number {
  return Math.ceil(Math.max(0, ...tokens.map((t) => textWidth(t, `bold ${TOKEN_FONT}`)))) + 2 * TOKEN_PAD + 2;
}

export interface TokenStyle {
  align: "left" | "right";
  special: boolean;
  pinned: boolean;
  /** Background colour (attention tint), or null. */
  tint: string | null;
  dark: boolean;
}

/** One token in its box, as the page draws it: tinted background, outlined and bold when pinned. */
export function paintToken(g: Painter, text: string, x: number, y: number, width: number, height: number, style: TokenStyle): void {
  const colors = ink(style.dark);
  if (style.tint) {
    g.fillStyle = style.tint;
    g.fillRect(x, y + 1, width, height - 2);
  }
  if (style.pinned) {
    g.strokeStyle = colors.text;
    g.lineWidth = 1;
    g.strokeRect(x + 0.5, y + 1.5, width - 1, height - 3);
  }
  g.font = style.pinned ? `bold ${TOKEN_FONT}` : TOKEN_FONT;
  g.fillStyle = style.special ? colors.muted : colors.text;
  g.textAlign = style.align;
  g.textBaseline = "middle";
  g.fillText(text, style.align === "right" ? x + width - TOKEN_PAD : x + TOKEN_PAD, y + height / 2);
}

const CHIP = { width: 24, height: 16, gap: 4 };
export const CHIP_ROW_HEIGHT = CHIP.height + 10;

/** The shown heads as coloured chips with their numbers, the focused one ringed. */
export function paintHeadChips(g: Painter, heads: number[], count: number, focused: number, dark: boolean): void {
  g.font = "11px system-ui, -apple-system, 'Segoe UI', sans-serif";
  g.textAlign = "center";
  g.textBaseline = "middle";
  heads.forEach((head, i) => {
    const x = i * (CHIP.width + CHIP.gap) + 1;
    const color = headColor(head, count, dark);
    g.fillStyle = css(color);
    g.fillRect(x, 1, CHIP.width, CHIP.height);
    if (head === focused) {
      g.strokeStyle = ink(dark).text;
      g.lineWidth = 1.5;
      g.strokeRect(x - 1, 0, CHIP.width + 2, CHIP.height + 2);
    }
    g.fillStyle = textOn(color);
    g.fillText(String(head), x + CHIP.width / 2, 1 + CHIP.height / 2);
  });
}

export function headChipsWidth(heads: number): number {
  return heads * (CHIP.width + CHIP.gap) + 2;
}

const VIEW_TITLES = { head: "Head view", model: "Model view", neuron: "Neuron view", matrix: "Matrix view" } as const;
const PAIR_TITLES = { AA: "A→A", AB: "A→B", BA: "B→A", BB: "B→B" } as const;

/** One line saying what the picture shows: view, stack, layer, heads, pinned token, pair filter. */
export function caption(selection: Selection): string {
  const info = selection.info;
  const view = selection.view;
  const parts: string[] = [VIEW_TITLES[view]];
  if (info && info.stack.name !== "self") parts.push(`${info.stack.name} attention`);
  parts.push(`layer ${selection.layer}`);
  const visible = selection.heads;
  if (view === "head") {
    const all = info && visible.length === info.stack.heads;
    parts.push(all ? `all ${visible.length} heads` : visible.length === 1 ? `head ${visible[0]}` : `heads ${headList(visible)}`);
    if (visible.length > 1 || !visible.includes(selection.head)) parts.push(`head ${selection.head} in front`);
  } else {
    parts.push(`head ${selection.head}${view === "model" ? " selected" : ""}`);
  }
  const token = selection.token;
  if (token !== null && info && view !== "model") parts.push(`${view === "neuron" ? "query " : ""}token ${token} “${info.query.tokens[token]}”`);
  if (view === "head" && selection.pairFilter !== "all") parts.push(`pairs ${PAIR_TITLES[selection.pairFilter]}`);
  return parts.join(" · ");
}

/** attnwidget-head-layer3-head5.png */
export function fileName(selection: Selection, format: ImageFormat): string {
  const stack = selection.stack && selection.stack !== "self" ? `-${selection.stack}` : "";
  return `attnwidget-${selection.view}${stack}-layer${selection.layer}-head${selection.head}.${format}`;
}

/** The snapshot under its caption, with margins and the theme's background. */
export function framed(snapshot: Snapshot, title: string, dark: boolean): Snapshot {
  const width = Math.ceil(Math.max(snapshot.width, textWidth(title, CAPTION_FONT)) + 2 * MARGIN);
  const height = Math.ceil(snapshot.height + CAPTION_HEIGHT + 2 * MARGIN);
  return {
    width,
    height,
    paint(g) {
      g.fillStyle = css(paper(dark));
      g.fillRect(0, 0, width, height);
      g.font = CAPTION_FONT;
      g.fillStyle = ink(dark).text;
      g.textAlign = "left";
      g.textBaseline = "middle";
      g.fillText(title, MARGIN, MARGIN + CAPTION_HEIGHT / 2 - 2);
      g.save();
      g.translate(MARGIN, MARGIN + CAPTION_HEIGHT);
      snapshot.paint(g);
      g.restore();
    },
  };
}

/** The picture as an SVG document: lines, rects and text as vector elements. */
export function toSvg(picture: Snapshot, title: string): string {
  const painter = new SvgPainter(picture.width, picture.height);
  picture.paint(painter);
  const rasters = painter.rasterImages
    ? ` ${painter.rasterImages} raster image(s) (heatmaps or bands too large for one rectangle per value)` +
      " are embedded as PNG; labels and lines are vector."
    : "";
  return painter.toString(`attnwidget: ${title}.${rasters}`);
}

/** The picture on a canvas at `scale` pixels per CSS pixel (less if the browser could not hold it). */
export function toCanvas(picture: Snapshot, scale = PNG_SCALE): HTMLCanvasElement {
  const fit = Math.min(scale, MAX_SIDE / picture.width, MAX_SIDE / picture.height, Math.sqrt(MAX_AREA / (picture.width * picture.height)));
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, Math.floor(picture.width * fit));
  canvas.height = Math.max(1, Math.floor(picture.height * fit));
  const g = canvas.getContext("2d");
  if (!g) throw new Error("this browser gave no 2D canvas to draw the image on");
  g.setTransform(canvas.width / picture.width, 0, 0, canvas.height / picture.height, 0, 0);
  picture.paint(g);
  return canvas;
}

export function toPng(picture: Snapshot, scale = PNG_SCALE): Promise<Blob> {
  const canvas = toCanvas(picture, scale);
  return new Promise((resolve, reject) =>
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("the browser could not encode the PNG"))), "image/png"),
  );
}
