// The model view's atlas: every head scored in Python (meta.head_scores, docs/analysis.md), so the grid can be
// coloured, sorted and filtered by one score, and the heads where it is highest listed to open.

import type { Meta, ScoreMeta } from "../contract";
import { el } from "../draw/dom";
import { labelledSelect } from "./parts";

/** One score of every head of a stack, with the bounds its colours run between. */
export interface ScoreColumn {
  meta: ScoreMeta;
  /** values[layer][head]; null where the score is not defined for that head. */
  values: (number | null)[][];
  low: number;
  high: number;
}

export interface RankedHead {
  layer: number;
  head: number;
  value: number;
}

/** Score `index` of every head of `stack`, or null when meta has none. */
export function scoreColumn(meta: Meta | null, stack: string, index: number): ScoreColumn | null {
  const scores = meta?.head_scores;
  const rows = scores?.values[stack];
  const score = scores?.scores[index];
  if (!score || !rows) return null;
  const values = rows.map((layer) => layer.map((head) => (typeof head?.[index] === "number" ? head[index] : null)));
  const defined = values.flat().filter((v): v is number => v !== null);
  const [low, high] = score.range ?? [Math.min(...defined), Math.max(...defined)];
  // One value everywhere (or none) still needs a span to divide by.
  return { meta: score, values, low: Number.isFinite(low) ? low : 0, high: high > low ? high : low + 1 };
}

/** Where `value` sits between the column's bounds, 0 to 1. */
export function scoreFraction(column: ScoreColumn, value: number): number {
  return Math.min(1, Math.max(0, (value - column.low) / (column.high - column.low)));
}

/** The `count` heads of the stack with the highest score, highest first (ties: lower layer, then head). */
export function topHeads(column: ScoreColumn, count: number): RankedHead[] {
  const ranked: RankedHead[] = [];
  column.values.forEach((heads, layer) =>
    heads.forEach((value, head) => {
      if (value !== null) ranked.push({ layer, head, value });
    }),
  );
  ranked.sort((a, b) => b.value - a.value || a.layer - b.layer || a.head - b.head);
  return ranked.slice(0, count);
}

/** The heads of one layer from highest score to lowest, heads without one last, each group in head order. */
export function headOrder(column: ScoreColumn, layer: number): number[] {
  const values = column.values[layer] ?? [];
  const key = (head: number) => values[head] ?? -Infinity;
  return [...values.keys()].sort((a, b) => key(b) - key(a) || a - b);
}

/** How a score is written: three significant digits, as the readouts write attention. */
export const formatScore = (value: number | null) => (value === null ? "n/a" : Number(value.toPrecision(3)).toString());

/** How many heads "Top heads" lists. */
export const TOP_HEADS = 8;

/** The controls above the grid: which score, sorted or not, from which value up; and the top heads. */
export interface AtlasControls {
  element: HTMLElement;
  score: HTMLSelectElement;
  sort: HTMLInputElement;
  threshold: HTMLInputElement;
  thresholdValue: HTMLElement;
  top: HTMLElement;
}

export function atlasControls(): AtlasControls {
  const { field, select: score } = labelledSelect("Score");
  const sort = el("input", { type: "checkbox", "aria-label": "Sort heads by score" });
  const sortField = el("label", { class: "aw-field" });
  sortField.append(sort, el("span", { class: "aw-field-name" }, "sort"));
  const threshold = el("input", { type: "range", min: 0, max: 1, step: 0.01, value: 0, "aria-label": "Dim heads below" });
  const thresholdValue = el("span", { class: "aw-atlas-threshold" });
  const thresholdField = el("label", { class: "aw-field" });
  thresholdField.append(el("span", { class: "aw-field-name" }, "dim below"), threshold, thresholdValue);
  const top = el("ol", { class: "aw-atlas-top", "aria-label": "Top heads" });
  const row = el("div", { class: "aw-atlas-controls" });
  row.append(field, sortField, thresholdField);
  const element = el("div", { class: "aw-atlas" });
  element.append(row, top);
  return { element, score, sort, threshold, thresholdValue, top };
}
