// A picture of the current view with its selection, as SVG text or a PNG blob. The view
// gives a Snapshot (its size and how to paint itself); this module frames it with a
// caption saying what is shown, on the theme's background.

import { layerLabel, type ImageFormat } from "../contract";
import { fitText, textWidth } from "../draw/canvas";
import { css, paper } from "../draw/colors";
import { PAIR_NAMES, headList } from "../draw/format";
import { TOKEN_MAX_WIDTH } from "../draw/paint";
import { CAPTION_FONT, ink } from "../draw/text";
import { shownQuery } from "../neuron/query";
import type { Selection } from "../selection";
import type { Snapshot } from "../views/view";
import { SvgPainter } from "./svg";

/** Pixels per CSS pixel of a PNG: sharp in print, whatever the screen. */
export const PNG_SCALE = 2;
const MAX_SIDE = 16384; // browsers refuse larger canvases
const MAX_AREA = 120_000_000;
const MARGIN = 12;
const CAPTION_HEIGHT = 26;

const VIEW_TITLES = { head: "Head view", model: "Model view", neuron: "Neuron view", matrix: "Matrix view" } as const;

/** One line saying what the picture shows: view, stack, layer, heads, pinned token, pair filter. */
export function caption(selection: Selection): string {
  const info = selection.info;
  const view = selection.view;
  const parts: string[] = [VIEW_TITLES[view]];
  const derived = info?.stack.derived;
  const base = derived?.from ?? info?.stack.name;
  if (base && base !== "self") parts.push(`${base} attention`);
  if (derived && derived.measure !== "attention") parts.push(derived.measure);
  if (derived?.words) parts.push("words");
  parts.push(`layer ${layerLabel(info?.stack, selection.layer)}`);
  const visible = selection.heads;
  if (view === "head") {
    const all = info && visible.length === info.stack.heads;
    parts.push(all ? `all ${visible.length} heads` : visible.length === 1 ? `head ${visible[0]}` : `heads ${headList(visible)}`);
    if (visible.length > 1 || !visible.includes(selection.head)) parts.push(`head ${selection.head} in front`);
  } else {
    parts.push(`head ${selection.head}${view === "model" ? " selected" : ""}`);
  }
  // The neuron view shows a query token even before one is selected.
  const token = view === "neuron" ? shownQuery(selection) : selection.token;
  if (token !== null && info && view !== "model") {
    // Cut, with room for twice what a token box shows, so a very long one cannot widen the picture.
    const text = fitText(info.query.tokens[token], CAPTION_FONT, 2 * TOKEN_MAX_WIDTH);
    parts.push(`${view === "neuron" ? "query " : ""}token ${token} “${text}”`);
  }
  if (view === "head" && selection.pairFilter !== "all") parts.push(`pairs ${PAIR_NAMES[selection.pairFilter]}`);
  return parts.join(" · ");
}

/** attnwidget-head-layer3-head5.png */
export function fileName(selection: Selection, format: ImageFormat): string {
  // Derived stacks join their parts with "·" (self·rollout), which file names are better without.
  const stack = selection.stack && selection.stack !== "self" ? `-${selection.stack.replace(/·/g, "-")}` : "";
  return `attnwidget-${selection.view}${stack}-layer${layerLabel(selection.info?.stack, selection.layer)}-head${selection.head}.${format}`;
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
