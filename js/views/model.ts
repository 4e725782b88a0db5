// Model view: every layer × head as a small attention matrix. A cell is a button; clicking
// one opens that layer and head in the head view. Rows load their chunk when scrolled near.

import { layerLabel, type StackInfo, type WatchedTrait } from "../contract";
import { imageCanvas, prepareCanvas } from "../draw/canvas";
import { attentionRamp } from "../draw/colors";
import { el, listen } from "../draw/dom";
import { UI_FONT, ink } from "../draw/text";
import { hintLine } from "./parts";
import { Lifetime, viewOf, type Snapshot, type View, type ViewContext } from "./view";

/** Side of one thumbnail in CSS pixels. */
export const CELL_SIZE = 52;

interface Row {
  layer: number;
  element: HTMLElement;
  state: HTMLElement;
  cells: HTMLButtonElement[];
  requested: boolean;
  painted: boolean;
}

/**
 * One head's n_query × n_key block shrunk to at most `size` pixels a side, keeping each
 * pixel's strongest value so that sharp patterns (a diagonal, one column) survive.
 */
export function thumbnail(bytes: Uint8Array, head: number, nq: number, nk: number, size: number): { width: number; height: number; values: Uint8Array } {
  const width = Math.min(nk, size);
  const height = Math.min(nq, size);
  const values = new Uint8Array(width * height);
  const base = head * nq * nk;
  for (let q = 0; q < nq; q++) {
    const row = Math.floor((q * height) / nq) * width;
    const source = base + q * nk;
    for (let k = 0; k < nk; k++) {
      const i = row + Math.floor((k * width) / nk);
      const v = bytes[source + k];
      if (v > values[i]) values[i] = v;
    }
  }
  return { width, height, values };
}

/** The thumbnail as an image in the attention ramp's colours, to be scaled up with drawImage. */
function thumbnailImage(bytes: Uint8Array, head: number, nq: number, nk: number, size: number, ramp: Uint8ClampedArray): HTMLCanvasElement | null {
  const picture = thumbnail(bytes, head, nq, nk, size);
  return imageCanvas(picture.width, picture.height, (data) => {
    picture.values.forEach((v, i) => data.set(ramp.subarray(v * 4, v * 4 + 4), i * 4));
  });
}

/** Layout of the grid in a saved image. */
const GRID = { label: 64, header: 18, gap: 4 };

export function modelView(ctx: ViewContext): View {
  const { selection } = ctx;
  const grid = el("div", { class: "aw-grid", role: "group", "aria-label": "Layers and heads" });
  const hint = hintLine("Each picture is one head's attention (rows: queries, columns: keys). Click one to open it in the head view.");
  const element = el("section", { class: "aw-view aw-modelview", "aria-label": "Model view" });
  element.style.setProperty("--aw-cell", `${CELL_SIZE}px`);
  element.append(grid, hint);

  const life = new Lifetime();
  let rows: Row[] = [];
  let builtFor: StackInfo | null = null;
  let observer: IntersectionObserver | null = null;

  function build(info: StackInfo): void {
    observer?.disconnect();
    const header = el("div", { class: "aw-mrow aw-mrow--header", "aria-hidden": "true" });
    header.append(el("span", { class: "aw-mlabel" }));
    for (let h = 0; h < info.stack.heads; h++) header.append(el("span", { class: "aw-mhead" }, String(h)));
    rows = Array.from({ length: info.stack.layers }, (_, layer) => {
      const element = el("div", { class: "aw-mrow", "data-layer": layer, "aria-busy": "true" });
      const state = el("span", { class: "aw-mstate" }, "loading…");
      const label = el("span", { class: "aw-mlabel" }, `Layer ${layerLabel(info.stack, layer)}`);
      label.append(state);
      const cells = Array.from({ length: info.stack.heads }, (_, head) => {
        const cell = el("button", { type: "button", class: "aw-cell", "data-layer": layer, "data-head": head, "aria-label": `Layer ${layerLabel(info.stack, layer)} Head ${head}` });
        cell.append(el("canvas", { "aria-hidden": "true" }));
        return cell;
      });
      element.append(label, ...cells);
      return { layer, element, state, cells, requested: false, painted: false };
    });
    grid.replaceChildren(header, ...rows.map((row) => row.element));
    builtFor = info;
    if (typeof IntersectionObserver === "undefined") {
      rows.forEach(load);
      return;
    }
    // Rows load when they come within a screen of the viewport, so a 32-layer model asks
    // Python only for what is looked at.
    observer = new IntersectionObserver(
      (entries) => entries.forEach((entry) => entry.isIntersecting && load(rows[Number((entry.target as HTMLElement).dataset.layer)])),
      { rootMargin: "100% 0px" },
    );
    rows.forEach((row) => observer!.observe(row.element));
  }

  function load(row: Row | undefined): void {
    if (!row || row.requested) return;
    row.requested = true;
    const info = builtFor!;
    const ready = ctx.chunks.peek(info.stack.name, row.layer);
    if (ready) return paintRow(row, ready);
    life.whenAnswered(
      ctx.chunks.get(info.stack.name, row.layer),
      () => builtFor === info,
      (bytes) => paintRow(row, bytes),
      (message) => {
        row.element.removeAttribute("aria-busy");
        row.state.textContent = "failed";
        row.state.title = message;
      },
    );
  }

  function paintRow(row: Row, bytes: Uint8Array): void {
    const info = builtFor!;
    const nq = info.query.tokens.length;
    const nk = info.key.tokens.length;
    const ramp = attentionRamp(ctx.dark());
    row.painted = true;
    row.element.removeAttribute("aria-busy");
    row.state.textContent = "";
    row.cells.forEach((cell, head) => {
      const canvas = cell.querySelector("canvas")!;
      const g = prepareCanvas(canvas, CELL_SIZE, CELL_SIZE);
      if (!g) return;
      const image = thumbnailImage(bytes, head, nq, nk, Math.round(CELL_SIZE * (canvas.width / CELL_SIZE)), ramp);
      if (!image) return;
      g.imageSmoothingEnabled = false;
      g.drawImage(image, 0, 0, CELL_SIZE, CELL_SIZE);
    });
  }

  function markSelected(): void {
    const { layer, head } = selection;
    for (const row of rows) {
      row.cells.forEach((cell, h) => {
        const selected = row.layer === layer && h === head;
        cell.classList.toggle("aw-cell--selected", selected);
        cell.setAttribute("aria-pressed", String(selected));
      });
    }
  }

  /** Every layer × head, loading the rows out of sight first; the selected cell is outlined. */
  async function snapshot(): Promise<Snapshot | null> {
    const info = selection.info;
    if (!info) return null;
    const { layers, heads, name } = info.stack;
    // A layer that cannot be had (left out of an export) is drawn as a note instead.
    const chunks = await Promise.all(Array.from({ length: layers }, (_, layer) => ctx.chunks.get(name, layer).catch(() => null)));
    const nq = info.query.tokens.length;
    const nk = info.key.tokens.length;
    const dark = ctx.dark();
    const colors = ink(dark);
    const step = CELL_SIZE + GRID.gap;
    const cellX = (head: number) => GRID.label + head * step;
    const cellY = (layer: number) => GRID.header + layer * step;
    return {
      width: GRID.label + heads * step,
      height: GRID.header + layers * step,
      paint(g) {
        const ramp = attentionRamp(dark);
        g.font = UI_FONT;
        g.textBaseline = "middle";
        g.fillStyle = colors.muted;
        g.textAlign = "center";
        for (let head = 0; head < heads; head++) g.fillText(String(head), cellX(head) + CELL_SIZE / 2, GRID.header / 2);
        for (let layer = 0; layer < layers; layer++) {
          const bytes = chunks[layer];
          g.fillStyle = colors.muted;
          g.textAlign = "left";
          g.fillText(`Layer ${layerLabel(info.stack, layer)}`, 0, cellY(layer) + CELL_SIZE / 2);
          if (!bytes) {
            g.fillText("not available", cellX(0), cellY(layer) + CELL_SIZE / 2);
            continue;
          }
          g.imageSmoothingEnabled = false;
          for (let head = 0; head < heads; head++) {
            const image = thumbnailImage(bytes, head, nq, nk, CELL_SIZE * 2, ramp);
            if (image) g.drawImage(image, cellX(head), cellY(layer), CELL_SIZE, CELL_SIZE);
          }
        }
        g.strokeStyle = colors.text;
        g.lineWidth = 2;
        g.strokeRect(cellX(selection.head) - 2, cellY(selection.layer) - 2, CELL_SIZE + 4, CELL_SIZE + 4);
      },
    };
  }

  life.add(
    listen(grid, "click", (event) => {
      const cell = (event.target as HTMLElement).closest<HTMLButtonElement>("button.aw-cell");
      if (cell) selection.selectCell(Number(cell.dataset.layer), Number(cell.dataset.head));
    }),
  );

  function update(trait?: WatchedTrait): void {
    const info = selection.info;
    if (!info) return;
    if (!builtFor || builtFor.stack !== info.stack || builtFor.query !== info.query) build(info);
    else if (trait === "_chunks") {
      // Chunks Python sent later: rows that asked and got nothing usable try again.
      rows.forEach((row) => {
        if (row.requested && !row.painted) {
          row.requested = false;
          load(row);
        }
      });
    } else if (trait === undefined) {
      // Theme changed: repaint the rows already loaded.
      rows.forEach((row) => {
        const bytes = row.requested && ctx.chunks.peek(info.stack.name, row.layer);
        if (bytes) paintRow(row, bytes);
      });
    }
    markSelected();
  }

  update();
  life.add(() => observer?.disconnect());
  return viewOf(element, life, update, snapshot);
}
