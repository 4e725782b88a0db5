// Model view: every layer × head as a small attention matrix. A cell is a button; clicking
// one opens that layer and head in the head view. The pictures are the thumbnails Python sent up front.
// With head scores (the atlas, ./atlas.ts), a bar under each picture shows the chosen score.

import { asSigned, chunkKey, headThumbnail, isSigned, layerLabel, thumbnailShape, toUint8, valueStep, type Binary, type StackInfo, type WatchedTrait } from "../contract";
import { imageCanvas, prepareCanvas } from "../draw/canvas";
import { attentionRamp } from "../draw/colors";
import { paintSigned } from "../draw/diverging";
import { el, listen } from "../draw/dom";
import { UI_FONT, ink } from "../draw/text";
import { TOP_HEADS, atlasControls, formatScore, headOrder, scoreColumn, scoreFraction, topHeads, type ScoreColumn } from "./atlas";
import { hintLine } from "./parts";
import { Lifetime, viewOf, type Snapshot, type View, type ViewContext } from "./view";

/** Side of one thumbnail in CSS pixels. */
export const CELL_SIZE = 52;

interface Row {
  layer: number;
  element: HTMLElement;
  state: HTMLElement;
  cells: HTMLButtonElement[];
  /** Each cell's bar showing the chosen score. */
  bars: HTMLElement[];
}

/** One head's thumbnail (Python max-pooled it, so sharp patterns survive) as an image in the attention ramp's
 *  colours, to be scaled up with drawImage; null when the layer has none. */
function thumbnailImage(ctx: ViewContext, info: StackInfo, layer: number, head: number, ramp: Uint8ClampedArray): HTMLCanvasElement | null {
  const meta = ctx.selection.meta;
  const binary = ctx.selection.model.get("_thumbs")?.[chunkKey(info.stack.name, layer)];
  if (!meta || !binary) return null;
  const values = headThumbnail(meta, info, layer, binary, head);
  const [rows, columns] = thumbnailShape(meta, info);
  if (isSigned(info)) {
    // Diverging colours, symmetric around 0 by the largest magnitude of the stack, so heads compare at a glance.
    const full = stackPeak(ctx.selection.model.get("_thumbs"), info);
    return imageCanvas(columns, rows, (data) => paintSigned(data, asSigned(values), rows, columns, () => full, "sqrt", ctx.dark()));
  }
  return imageCanvas(columns, rows, (data) => {
    values.forEach((v, i) => data.set(ramp.subarray(v * 4, v * 4 + 4), i * 4));
  });
}

/** The largest magnitude (in bytes) of any thumbnail of a signed stack, once per `_thumbs` value. */
const peaks = new WeakMap<object, Map<string, number>>();
function stackPeak(thumbs: Record<string, Binary>, info: StackInfo): number {
  let known = peaks.get(thumbs);
  if (!known) peaks.set(thumbs, (known = new Map()));
  let peak = known.get(info.stack.name);
  if (peak === undefined) {
    peak = 0;
    for (let layer = 0; layer < info.stack.layers; layer++) {
      const binary = thumbs[chunkKey(info.stack.name, layer)];
      if (!binary) continue;
      for (const value of asSigned(toUint8(binary))) peak = Math.max(peak, Math.abs(value));
    }
    known.set(info.stack.name, peak);
  }
  return peak;
}

const ATTENTION_HINT = "Each picture is one head's attention (rows: queries, columns: keys). Click one to open it in the head view.";

/** What a signed stack's pictures show, for the hint under the grid: `full` is the magnitude of full colour. */
function differenceHint(info: StackInfo, full: number): string {
  const [a, b] = info.stack.difference_of ?? ["A", "B"];
  return `Each picture is one head of ${a} minus ${b}: red where ${a} attends more, blue where ${b} does, full colour at ±${full.toFixed(3)} (the largest difference). Click one to open it.`;
}

/** Layout of the grid in a saved image. */
const GRID = { label: 64, header: 18, gap: 4 };

export function modelView(ctx: ViewContext): View {
  const { selection } = ctx;
  const grid = el("div", { class: "aw-grid", role: "group", "aria-label": "Layers and heads" });
  const hint = hintLine(ATTENTION_HINT);
  const atlas = atlasControls();
  const element = el("section", { class: "aw-view aw-modelview", "aria-label": "Model view" });
  element.style.setProperty("--aw-cell", `${CELL_SIZE}px`);
  element.append(atlas.element, grid, hint);

  const life = new Lifetime();
  let rows: Row[] = [];
  let builtFor: StackInfo | null = null;

  function build(info: StackInfo): void {
    const header = el("div", { class: "aw-mrow aw-mrow--header", "aria-hidden": "true" });
    header.append(el("span", { class: "aw-mlabel" }));
    for (let h = 0; h < info.stack.heads; h++) header.append(el("span", { class: "aw-mhead" }, String(h)));
    rows = Array.from({ length: info.stack.layers }, (_, layer) => {
      const element = el("div", { class: "aw-mrow", "data-layer": layer });
      const state = el("span", { class: "aw-mstate" });
      const label = el("span", { class: "aw-mlabel" }, `Layer ${layerLabel(info.stack, layer)}`);
      label.append(state);
      const bars: HTMLElement[] = [];
      const cells = Array.from({ length: info.stack.heads }, (_, head) => {
        const cell = el("button", { type: "button", class: "aw-cell", "data-layer": layer, "data-head": head, "aria-label": `Layer ${layerLabel(info.stack, layer)} Head ${head}` });
        const bar = el("span", { class: "aw-score-bar", "aria-hidden": "true" });
        cell.append(el("canvas", { "aria-hidden": "true" }), bar);
        bars.push(bar);
        return cell;
      });
      element.append(label, ...cells);
      return { layer, element, state, cells, bars };
    });
    grid.replaceChildren(header, ...rows.map((row) => row.element));
    builtFor = info;
    rows.forEach(paintRow);
  }

  /** Every head of the row from the thumbnails Python sent up front: no request, however many layers. */
  function paintRow(row: Row): void {
    const info = builtFor!;
    const ramp = attentionRamp(ctx.dark());
    try {
      row.cells.forEach((cell, head) => {
        const canvas = cell.querySelector("canvas")!;
        const g = prepareCanvas(canvas, CELL_SIZE, CELL_SIZE);
        const image = g && thumbnailImage(ctx, info, row.layer, head, ramp);
        if (!g || !image) return;
        g.imageSmoothingEnabled = false;
        g.drawImage(image, 0, 0, CELL_SIZE, CELL_SIZE);
      });
      row.state.textContent = "";
    } catch (error) {
      row.state.textContent = "failed";
      row.state.title = (error as Error).message;
    }
  }

  /** The chosen score on every cell: its bar, its name, its place in a sorted row, dimmed below the threshold. */
  function showScores(): void {
    const info = builtFor!;
    const chosen = selection.score;
    const column = chosen && scoreColumn(selection.meta, info.stack.name, chosen.index);
    const scored = selection.meta?.head_scores?.scores ?? [];
    atlas.element.hidden = scored.length === 0;
    setScoreOptions(scored.map((score) => [score.name, score.label]));
    atlas.score.value = column ? column.meta.name : "";
    atlas.score.title = column ? column.meta.about : "";
    const sorted = !!column && atlas.sort.checked;
    grid.classList.toggle("aw-grid--sorted", sorted);
    const threshold = column ? column.low + Number(atlas.threshold.value) * (column.high - column.low) : -Infinity;
    atlas.thresholdValue.textContent = column && Number(atlas.threshold.value) > 0 ? `${formatScore(threshold)}` : "";
    for (const row of rows) {
      const order = sorted ? headOrder(column!, row.layer) : null;
      row.cells.forEach((cell, head) => {
        const value = column?.values[row.layer]?.[head] ?? null;
        const name = `Layer ${layerLabel(info.stack, row.layer)} Head ${head}`;
        cell.setAttribute("aria-label", name);
        cell.title = column ? `${name}: ${column.meta.label} ${formatScore(value)}` : "";
        cell.style.order = order ? String(order.indexOf(head) + 1) : "";
        cell.classList.toggle("aw-cell--dimmed", !!column && (value === null || value < threshold));
        row.bars[head].hidden = !column || value === null;
        if (column && value !== null) row.bars[head].style.setProperty("--aw-score", String(scoreFraction(column, value)));
      });
    }
    listTopHeads(column ?? null);
  }

  function setScoreOptions(options: [string, string][]): void {
    const wanted = [["", "none"], ...options];
    const have = [...atlas.score.options].map((option) => [option.value, option.text]);
    if (JSON.stringify(have) !== JSON.stringify(wanted)) {
      atlas.score.replaceChildren(...wanted.map(([value, text]) => el("option", { value }, text)));
    }
  }

  function listTopHeads(column: ScoreColumn | null): void {
    const info = builtFor!;
    const items = column
      ? topHeads(column, TOP_HEADS).map(({ layer, head, value }) => {
          const name = `layer ${layerLabel(info.stack, layer)} head ${head}`;
          const open = el("button", { type: "button", class: "aw-atlas-head", "data-layer": layer, "data-head": head, "aria-label": `Open ${name}, ${column.meta.label} ${formatScore(value)}` }, `L${layerLabel(info.stack, layer)} H${head} ${formatScore(value)}`);
          const item = el("li");
          item.append(open);
          return item;
        })
      : [];
    atlas.top.replaceChildren(...items);
    atlas.top.hidden = items.length === 0;
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
  function snapshot(): Snapshot | null {
    const info = selection.info;
    if (!info) return null;
    const { layers, heads } = info.stack;
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
          g.fillStyle = colors.muted;
          g.textAlign = "left";
          g.fillText(`Layer ${layerLabel(info.stack, layer)}`, 0, cellY(layer) + CELL_SIZE / 2);
          g.imageSmoothingEnabled = false;
          for (let head = 0; head < heads; head++) {
            const image = thumbnailImage(ctx, info, layer, head, ramp);
            if (image) g.drawImage(image, cellX(head), cellY(layer), CELL_SIZE, CELL_SIZE);
          }
        }
        g.strokeStyle = colors.text;
        g.lineWidth = 2;
        g.strokeRect(cellX(selection.head) - 2, cellY(selection.layer) - 2, CELL_SIZE + 4, CELL_SIZE + 4);
      },
    };
  }

  const openCell = (event: Event) => {
    const cell = (event.target as HTMLElement).closest<HTMLButtonElement>("button.aw-cell, button.aw-atlas-head");
    if (cell) selection.selectCell(Number(cell.dataset.layer), Number(cell.dataset.head));
  };
  life.add(
    listen(grid, "click", openCell),
    listen(atlas.top, "click", openCell),
    listen(atlas.score, "change", () => selection.setScore(atlas.score.value)),
    listen(atlas.sort, "change", showScores),
    listen(atlas.threshold, "input", showScores),
  );

  function update(trait?: WatchedTrait): void {
    const info = selection.info;
    if (!info) return;
    if (!builtFor || builtFor.stack !== info.stack || builtFor.query !== info.query) build(info);
    else if (trait === undefined || trait === "_thumbs") rows.forEach(paintRow); // theme, or thumbnails sent later
    const thumbs = selection.model.get("_thumbs");
    hint.textContent = isSigned(info) && thumbs ? differenceHint(info, stackPeak(thumbs, info) * valueStep(selection.meta, info)) : ATTENTION_HINT;
    markSelected();
    showScores();
  }

  update();
  return viewOf(element, life, update, snapshot);
}
