// Neuron view: how one query token of one head attends. The query vector on top; per key
// token its key vector, q × k elementwise, the score q·k × scale, the capped score where the
// model soft-caps (Gemma 2), the model's bias where it has one, and the softmax, with a line
// from the query to each key as strong as its weight. A layer with a sink, one more key that is no
// token of the text, gets one more row named as meta names it ("<sink>" for GPT-OSS's learned sinks,
// "<prompt>" for CPM-Ant's prompt positions): its logit and the weight it takes.
//
// Scores and weights are computed here in float64 from the float32 queries and keys Python sends, one head per
// record (js/contract/query-key.ts, js/neuron/row.ts), so the digits shown are Python's. Each row carries them as
// data-score / data-capped / data-bias / data-softmax. Only the key rows in view are in the DOM and on the canvas,
// so a head of 4096 keys scrolls as smoothly as one of 10.

import "./neuron.css";
import { layerLabel, sinkOf, type QueryKeyHead, type SinkMeta, type StackInfo } from "../contract";
import { prepareCanvas } from "../draw/canvas";
import { css, headColor } from "../draw/colors";
import { el, listen, listenKeys } from "../draw/dom";
import { exact, headList, shown, signed } from "../draw/format";
import { paintToken } from "../draw/paint";
import type { Painter } from "../draw/painter";
import { UI_FONT, ink } from "../draw/text";
import { bandImage, divergingGradient, maxMagnitude } from "../neuron/bands";
import { neuronRow, type NeuronRow } from "../neuron/row";
import { shownQuery } from "../neuron/query";
import { NO_QUERY_KEY, QueryKeyStore, noQueryKeyOfDerived } from "../neuron/store";
import { headChips } from "./chips";
import { hintLine, readoutHeading, scrollBox } from "./parts";
import { Lifetime, selectedFocus, viewOf, type Snapshot, type View, type ViewContext } from "./view";

/** Height of one key row in CSS pixels; the canvas places bands and line ends by it. */
export const NEURON_ROW = 18;
const LINES_WIDTH = 56;
const BAND_PAD = 4;
const SCORE_WIDTH = 76;
const SOFTMAX_WIDTH = 170;
const LABEL_MIN = 48;
const LABEL_MAX = 150;
const LABEL_CHAR = 7;
const HEADER_ROW = 20;
const BAR_WIDTH = 70;
/** Rows drawn beyond each edge of the visible ones, so a short scroll shows rows already there. */
const OVERSCAN = 8;
/** The height taken as visible before the view is laid out (a hidden tab, tests without layout). */
const UNLAID_HEIGHT = 720;

/** The softmax cell of a row: a bar as long as the weight, and the weight (or "masked"). */
function softmaxCell(weight: number, text: string): HTMLElement {
  const bar = el("span", { class: "aw-nbar" });
  bar.style.setProperty("--aw-weight", String(weight));
  const cell = el("span", { class: "aw-nsoftmax" });
  cell.append(bar, el("span", { class: "aw-nvalue" }, text));
  return cell;
}

/** What the sink row's label says when hovered: what the sink stands for, and what its logit is. */
function sinkTitle(meta: SinkMeta, perQuery: boolean): string {
  const logit = perQuery ? "its logit is the log-sum-exp of this query's logits of them" : "one more logit in every softmax";
  return `${meta.label}: ${meta.stands_for}; ${logit}. Its weight goes to no token of the text`;
}

/** The sink as a last key row: its logit and the weight it takes. */
function sinkRow(sink: NonNullable<NeuronRow["sink"]>, meta: SinkMeta): HTMLElement {
  const item = el("div", {
    class: "aw-nrow aw-nrow--sink",
    role: "listitem",
    "data-sink": "true",
    "data-score": shown(sink.logit),
    "data-softmax": shown(sink.weight),
  });
  const label = el("span", { class: "aw-tok aw-tok--special", title: sinkTitle(meta, sink.perQuery) }, meta.label);
  const logit = el("span", { class: "aw-nnum" }, shown(sink.logit));
  item.append(el("span"), label, el("span"), el("span"), logit, el("span"), el("span"), softmaxCell(sink.weight, shown(sink.weight)));
  return item;
}

/** "query head 5 reads key/value head 1 (shared by heads 4–7)", or null without grouped queries. */
export function sharingCaption(head: number, kvHeadOf: number[]): string | null {
  const grouped = kvHeadOf.some((kv, h) => kv !== h);
  if (!grouped) return null;
  const kv = kvHeadOf[head];
  const sharers = kvHeadOf.flatMap((other, h) => (other === kv ? [h] : []));
  const shared = sharers.length > 1 ? ` (shared by heads ${headList(sharers)})` : "";
  return `query head ${head} reads key/value head ${kv}${shared}`;
}

/** Key rows, and the sink's row where the head has one. */
const rowCount = (row: NeuronRow, record: QueryKeyHead) => record.nKey + (row.sink ? 1 : 0);

interface Geometry {
  label: number;
  band: number;
  dimWidth: number;
}

export function neuronView(ctx: ViewContext): View {
  const { selection } = ctx;
  const store = new QueryKeyStore(selection.model);
  const chips = headChips(ctx, "focus");
  const caption = el("p", { class: "aw-neuron-caption" });
  const queries = el("div", { class: "aw-neuron-queries", role: "group", "aria-label": "Query tokens" });
  const status = el("p", { class: "aw-status", role: "status" });
  const heading = readoutHeading("negative", "positive");
  const { readout, legendBar } = heading;

  const table = el("div", { class: "aw-neuron-table" });
  const headRow = el("div", { class: "aw-nrow aw-nrow--head" });
  headRow.append(
    ...["", "key", "key vector", "q × k", "q·k × scale", "capped", "+ bias", "softmax"].map((text) => el("span", {}, text)),
  );
  const queryRow = el("div", { class: "aw-nrow aw-nrow--query" });
  const queryLabel = el("span", { class: "aw-tok aw-neuron-query" });
  const queryBand = el("canvas", { class: "aw-neuron-qband", "aria-label": "Query vector: hover to read a dimension" });
  const queryBandCell = el("span", {});
  queryBandCell.append(queryBand);
  queryRow.append(el("span", { class: "aw-neuron-q" }, "query"), queryLabel, queryBandCell, ...Array.from({ length: 5 }, () => el("span")));
  const body = el("div", { class: "aw-neuron-body" });
  const canvas = el("canvas", { "aria-hidden": "true" });
  const rows = el("div", { class: "aw-neuron-rows", role: "list", "aria-label": "Key tokens" });
  body.append(canvas, rows);
  table.append(headRow, queryRow, body);
  const scroller = scrollBox(table);
  const hint = hintLine(
    "Click a token to make it the query (↑↓ move it, ←→ change head). Hover a band to read a dimension, a row to read its score. " +
      "Blue is negative, orange positive; full colour is the largest magnitude of the vectors shown.",
  );
  const element = el("section", { class: "aw-view aw-neuronview", "aria-label": "Neuron view" });
  element.style.setProperty("--aw-row", `${NEURON_ROW}px`);
  element.append(chips.element, caption, queries, status, heading.element, scroller, hint);

  const life = new Lifetime();
  let builtQueries: StackInfo | null = null;
  let queryButtons: HTMLButtonElement[] = [];
  // What is on screen, for the hover readout.
  let shownRow: {
    info: StackInfo;
    token: number;
    row: NeuronRow;
    record: QueryKeyHead;
    geometry: Geometry;
    keys: Float32Array[];
    products: Float32Array[];
    columns: number[];
    withBias: boolean;
    /** The full-strength ends of the key and product bands. */
    vectorMax: number;
    productMax: number;
  } | null = null;
  /** The rows [first, last) in the DOM and on the canvas. */
  let shownWindow: [number, number] | null = null;
  let scrollFrame = 0;

  function buildQueries(info: StackInfo): void {
    queryButtons = info.query.tokens.map((token, i) =>
      el("button", { type: "button", class: info.query.special[i] ? "aw-tok aw-tok--special" : "aw-tok", "data-index": i, title: token }, token),
    );
    queries.replaceChildren(...queryButtons);
    builtQueries = info;
  }

  function geometryOf(info: StackInfo, record: QueryKeyHead, token: number): Geometry {
    const sink = record.sinks ? sinkOf(info.stack).label.length : 0;
    const longest = Math.max(sink, ...info.key.tokens.map((t) => t.length), info.query.tokens[token]?.length ?? 0);
    const label = Math.min(LABEL_MAX, Math.max(LABEL_MIN, longest * LABEL_CHAR + 16));
    // About 128-160 px per band whatever the head size: up to 8 px per dimension, at least 1.
    const dimWidth = Math.max(1, Math.min(8, Math.floor(160 / record.dim)));
    return { label, band: dimWidth * record.dim, dimWidth };
  }

  function clear(message: string): void {
    status.textContent = message;
    rows.replaceChildren();
    queryRow.hidden = true;
    headRow.hidden = true;
    shownRow = null;
    shownWindow = null;
    prepareCanvas(canvas, 1, 1)?.clearRect(0, 0, 1, 1);
    body.style.height = "0px";
  }

  function draw(): void {
    const info = selection.info;
    if (!info) return clear("No attention to show.");
    if (info.stack.derived) return clear(noQueryKeyOfDerived(info.stack.derived));
    if (!store.available()) return clear(NO_QUERY_KEY);
    const layerName = layerLabel(info.stack, selection.layer);
    const where = `layer ${layerName}, head ${selection.head}`;
    const record = selectedFocus(selection, store, life, draw, (message) =>
      clear(`Could not load the queries and keys of ${where}: ${message}`),
    );
    if (!record) return clear(`Loading the queries and keys of ${where}…`);
    const token = shownQuery(selection);
    if (token === null) return clear("There are no query tokens to show.");
    status.textContent = "";
    drawRow(info, record, token);
  }

  function drawRow(info: StackInfo, record: QueryKeyHead, token: number): void {
    const row = neuronRow(record, token);
    const geometry = geometryOf(info, record, token);
    const withBias = !!record.bias?.additive;
    const keys = Array.from({ length: record.nKey }, (_, k) => row.key(k));
    const products = keys.map((key) => key.map((v, d) => v * row.query[d]));
    const columns = [LINES_WIDTH, geometry.label, geometry.band + 2 * BAND_PAD, geometry.band + 2 * BAND_PAD, SCORE_WIDTH];
    if (row.capped) columns.push(SCORE_WIDTH);
    if (withBias) columns.push(SCORE_WIDTH);
    columns.push(SOFTMAX_WIDTH);
    const vectorMax = maxMagnitude([row.query, ...keys]);
    shownRow = { info, token, row, record, geometry, keys, products, columns, withBias, vectorMax, productMax: maxMagnitude(products) };
    shownWindow = null;
    table.style.setProperty("--aw-neuron-columns", columns.map((w) => `${w}px`).join(" "));
    table.classList.toggle("aw-neuron-table--bias", withBias);
    table.classList.toggle("aw-neuron-table--capped", !!row.capped);
    headRow.hidden = false;
    queryRow.hidden = false;
    queryLabel.textContent = info.query.tokens[token];
    queryLabel.title = `query token ${token}${selection.token === null ? ", shown until you pick a token" : ""}`;
    body.style.height = `${rowCount(row, record) * NEURON_ROW}px`;
    drawVisibleRows();
    const q = prepareCanvas(queryBand, geometry.band, NEURON_ROW - 4);
    const image = bandImage([row.query], record.dim, vectorMax, ctx.dark());
    if (q && image) {
      q.imageSmoothingEnabled = false;
      q.drawImage(image, 0, 0, geometry.band, NEURON_ROW - 4);
    }
  }

  /** The rows [first, last) that are in view, with a few more on each side. */
  function visibleWindow(count: number): [number, number] {
    // How far the rows' top lies above the scroll box's: the rows hidden above.
    const top = scroller.getBoundingClientRect().top - body.getBoundingClientRect().top;
    const height = scroller.clientHeight || UNLAID_HEIGHT;
    const first = Math.max(0, Math.min(count, Math.floor(top / NEURON_ROW) - OVERSCAN));
    const last = Math.max(first, Math.min(count, Math.ceil((top + height) / NEURON_ROW) + OVERSCAN));
    return [first, last];
  }

  /** The key rows in view as elements, and their lines and bands on a canvas as tall as they are. */
  function drawVisibleRows(): void {
    if (!shownRow) return;
    const { info, token, row, record, geometry, keys, products, columns, withBias, vectorMax, productMax } = shownRow;
    const [first, last] = visibleWindow(rowCount(row, record));
    if (shownWindow && shownWindow[0] === first && shownWindow[1] === last) return;
    shownWindow = [first, last];
    const sameSide = info.stack.query_side === info.stack.key_side;
    const keyRow = (k: number) => {
      const masked = row.masked[k];
      const item = el("div", {
        class: masked ? "aw-nrow aw-nrow--masked" : "aw-nrow",
        role: "listitem",
        "data-key": k,
        "data-score": shown(row.scores[k]),
        "data-capped": row.capped ? shown(row.capped[k]) : null,
        "data-bias": withBias ? shown(row.bias[k]) : null,
        "data-softmax": masked ? "0" : shown(row.softmax[k]),
        "data-masked": masked ? "true" : null,
      });
      const text = info.key.tokens[k];
      const tokenClass = info.key.special[k] ? "aw-tok aw-tok--special" : "aw-tok";
      // A key token is a query token too in self-attention: clicking it makes it the query.
      const label = sameSide
        ? el("button", { type: "button", class: tokenClass, "data-index": k, title: `${text}: click to make it the query` }, text)
        : el("span", { class: tokenClass, title: text }, text);
      if (sameSide) label.setAttribute("aria-pressed", String(k === token));
      item.append(
        el("span"),
        label,
        el("span"),
        el("span"),
        el("span", { class: "aw-nnum" }, masked ? "masked" : shown(row.scores[k])),
        el("span", { class: "aw-nnum aw-ncapped" }, row.capped && !masked ? shown(row.capped[k]) : ""),
        el("span", { class: "aw-nnum aw-nbias" }, withBias ? (masked ? "−∞" : signed(shown(row.bias[k]))) : ""),
        softmaxCell(row.softmax[k], masked ? "masked" : shown(row.softmax[k])),
      );
      return item;
    };
    const items = [];
    for (let k = first; k < Math.min(last, record.nKey); k++) items.push(keyRow(k));
    if (row.sink && last > record.nKey) items.push(sinkRow(row.sink, sinkOf(info.stack)));
    rows.replaceChildren(...items);
    rows.style.paddingTop = `${first * NEURON_ROW}px`;

    const top = first * NEURON_ROW;
    const height = Math.max(1, (last - first) * NEURON_ROW);
    canvas.style.top = `${top}px`;
    const width = columns.reduce((a, b) => a + b, 0);
    const g = prepareCanvas(canvas, width, height);
    if (!g) return;
    const dark = ctx.dark();
    g.clearRect(0, 0, width, height);
    g.save();
    g.translate(0, -top); // drawn in the body's coordinates, clipped to the rows in view
    drawLines(g, row, info, dark, first, last);
    const keyX = LINES_WIDTH + geometry.label + BAND_PAD;
    const shownKeys = Math.min(last, record.nKey);
    drawBands(g, keys, vectorMax, keyX, geometry, record.dim, dark, first, shownKeys);
    drawBands(g, products, productMax, keyX + geometry.band + 2 * BAND_PAD, geometry, record.dim, dark, first, shownKeys);
    g.restore();
  }

  /** The bands of vectors [first, last), each in its key row. */
  function drawBands(g: Painter, vectors: Float32Array[], max: number, x: number, geometry: Geometry, dim: number, dark: boolean, first: number, last: number): void {
    const image = bandImage(vectors.slice(first, last), dim, max, dark);
    if (!image) return;
    g.imageSmoothingEnabled = false;
    // Row by row, with a pixel between rows so neighbouring keys stay apart.
    for (let k = first; k < last; k++) g.drawImage(image, 0, k - first, dim, 1, x, k * NEURON_ROW + 2, geometry.band, NEURON_ROW - 4);
  }

  /** The lines from the query to the rows [first, last) (the sink's is the last), as strong as their weights. */
  function drawLines(g: Painter, row: NeuronRow, info: StackInfo, dark: boolean, first: number, last: number): void {
    g.strokeStyle = css(headColor(selection.head, info.stack.heads, dark));
    g.lineCap = "round";
    const weightOf = (k: number) => (k < row.softmax.length ? row.softmax[k] : (row.sink?.weight ?? 0));
    for (let k = first; k < last; k++) {
      const weight = weightOf(k);
      if (row.masked[k] || weight < 0.005) continue;
      g.globalAlpha = 0.15 + 0.85 * weight;
      g.lineWidth = 1 + 2 * weight;
      g.beginPath();
      g.moveTo(4, 0);
      g.lineTo(LINES_WIDTH - 4, k * NEURON_ROW + NEURON_ROW / 2);
      g.stroke();
    }
    g.globalAlpha = 1;
  }

  /** The table as shown: column titles, the query and its vector, then per key its vectors, numbers and line. */
  function snapshot(): Snapshot | null {
    if (!shownRow) return null;
    const { info, token, row, record, geometry, keys, products, columns, withBias, vectorMax, productMax } = shownRow;
    const dark = ctx.dark();
    const colors = ink(dark);
    const x = columns.map((_, i) => columns.slice(0, i).reduce((a, b) => a + b, 0));
    const top = HEADER_ROW + NEURON_ROW;
    const accent = css(headColor(selection.head, info.stack.heads, dark));
    return {
      width: columns.reduce((a, b) => a + b, 0),
      height: top + rowCount(row, record) * NEURON_ROW,
      paint(g) {
        const optional = [...(row.capped ? ["capped"] : []), ...(withBias ? ["+ bias"] : [])];
        const titles = ["", "key", "key vector", "q × k", "q·k × scale", ...optional, "softmax"];
        const biasX = x[row.capped ? 6 : 5];
        g.font = UI_FONT;
        g.fillStyle = colors.muted;
        g.textAlign = "left";
        g.textBaseline = "middle";
        titles.forEach((title, i) => g.fillText(title, x[i] + 4, HEADER_ROW / 2));
        g.fillText("query", x[0] + 4, HEADER_ROW + NEURON_ROW / 2);
        const tokenStyle = { align: "left" as const, pinned: false, tint: null, dark };
        const queryStyle = { ...tokenStyle, special: info.query.special[token], pinned: true };
        paintToken(g, info.query.tokens[token], x[1], HEADER_ROW, columns[1], NEURON_ROW, queryStyle);
        g.save();
        g.translate(0, HEADER_ROW);
        drawBands(g, [row.query], vectorMax, x[2] + BAND_PAD, geometry, record.dim, dark, 0, 1);
        g.restore();
        g.save();
        g.translate(0, top);
        drawLines(g, row, info, dark, 0, rowCount(row, record));
        drawBands(g, keys, vectorMax, x[2] + BAND_PAD, geometry, record.dim, dark, 0, record.nKey);
        drawBands(g, products, productMax, x[3] + BAND_PAD, geometry, record.dim, dark, 0, record.nKey);
        const softmaxX = x[columns.length - 1];
        /** A row's label and score; then its weight as a bar and a number. */
        const paintRow = (y: number, label: string, special: boolean, score: string, weight: number, text: string) => {
          paintToken(g, label, x[1], y, columns[1], NEURON_ROW, { ...tokenStyle, special });
          g.font = UI_FONT;
          g.fillStyle = colors.text;
          g.textAlign = "right";
          g.textBaseline = "middle";
          g.fillText(score, x[4] + SCORE_WIDTH - 8, y + NEURON_ROW / 2);
          g.strokeStyle = colors.muted;
          g.lineWidth = 1;
          g.strokeRect(softmaxX + 4.5, y + 4.5, BAR_WIDTH, NEURON_ROW - 9);
          g.fillStyle = accent;
          g.fillRect(softmaxX + 4.5, y + 4.5, BAR_WIDTH * weight, NEURON_ROW - 9);
          g.fillStyle = colors.text;
          g.textAlign = "left";
          g.fillText(text, softmaxX + BAR_WIDTH + 10, y + NEURON_ROW / 2);
          g.textAlign = "right";
        };
        keys.forEach((_, k) => {
          const y = k * NEURON_ROW;
          const masked = row.masked[k];
          const weight = masked ? 0 : row.softmax[k];
          paintRow(y, info.key.tokens[k], info.key.special[k], masked ? "masked" : shown(row.scores[k]), weight, masked ? "masked" : shown(weight));
          if (row.capped && !masked) g.fillText(shown(row.capped[k]), x[5] + SCORE_WIDTH - 8, y + NEURON_ROW / 2);
          if (withBias) g.fillText(masked ? "−∞" : signed(shown(row.bias[k])), biasX + SCORE_WIDTH - 8, y + NEURON_ROW / 2);
        });
        if (row.sink) paintRow(record.nKey * NEURON_ROW, sinkOf(info.stack).label, true, shown(row.sink.logit), row.sink.weight, shown(row.sink.weight));
        g.restore();
      },
    };
  }

  function describeRow(k: number): string {
    if (!shownRow) return "";
    const { info, row } = shownRow;
    if (row.sink && k === shownRow.record.nKey) {
      const { label, stands_for } = sinkOf(info.stack);
      const weight = exact(row.sink.weight);
      if (!row.sink.perQuery) return `${label}: logit ${exact(row.sink.logit)}; softmax = ${weight}, which goes to no token`;
      const logit = `logit ${exact(row.sink.logit)}, the log-sum-exp of the logits of ${stands_for}`;
      return `${label}: ${logit}; softmax = ${weight}, what they take together`;
    }
    const name = `key ${k} “${info.key.tokens[k]}”`;
    if (row.masked[k]) return `${name}: masked (the model does not let this query see this key)`;
    const logit = row.capped ? row.capped[k] : row.scores[k];
    const capped = row.capped ? `, capped ${exact(logit)}` : "";
    const bias = shownRow.withBias ? ` ${signed(exact(row.bias[k]))} bias = ${exact(logit + row.bias[k])}` : "";
    return `${name}: q·k × scale = ${exact(row.scores[k])}${capped}${bias}; softmax = ${exact(row.softmax[k])}`;
  }

  function describeDimension(k: number | null, d: number): string {
    if (!shownRow) return "";
    const { info, token, row, products } = shownRow;
    const q = `q = ${shown(row.query[d])}`;
    if (k === null) return `query “${info.query.tokens[token]}”, dimension ${d}: ${q}`;
    const key = row.key(k)[d];
    return `key ${k} “${info.key.tokens[k]}”, dimension ${d}: k = ${shown(key)}, ${q}, q × k = ${shown(products[k][d])}`;
  }

  function onBodyHover(event: MouseEvent): void {
    if (!shownRow) return;
    const rect = body.getBoundingClientRect();
    const x = event.clientX - rect.left;
    const k = Math.floor((event.clientY - rect.top) / NEURON_ROW);
    if (k < 0 || k >= rowCount(shownRow.row, shownRow.record)) return;
    const { geometry } = shownRow;
    const keyX = LINES_WIDTH + geometry.label + BAND_PAD;
    const productX = keyX + geometry.band + 2 * BAND_PAD;
    const dimAt = (start: number) => Math.floor((x - start) / geometry.dimWidth);
    const inside = (start: number) => x >= start && x < start + geometry.band;
    const isKey = k < shownRow.record.nKey;
    if (isKey && inside(keyX)) readout.textContent = describeDimension(k, dimAt(keyX));
    else if (isKey && inside(productX)) readout.textContent = describeDimension(k, dimAt(productX));
    else readout.textContent = describeRow(k);
  }

  const tokenIndex = (event: Event) => Number((event.target as HTMLElement).closest<HTMLElement>("[data-index]")?.dataset.index);
  const pick = (event: Event) => {
    const index = tokenIndex(event);
    if (Number.isInteger(index)) selection.setToken(index);
  };
  life.add(
    chips.dispose,
    listenKeys(element, () => {
      const count = selection.info?.query.tokens.length ?? 0;
      const token = shownQuery(selection);
      if (count === 0) return null;
      return {
        ArrowUp: () => selection.setToken(token === null ? count - 1 : Math.max(0, token - 1)),
        ArrowDown: () => selection.setToken(token === null ? 0 : Math.min(count - 1, token + 1)),
        ArrowLeft: () => selection.setHead(selection.head - 1),
        ArrowRight: () => selection.setHead(selection.head + 1),
      };
    }),
    listen(queries, "click", pick),
    listen(rows, "click", pick),
    listen(body, "mousemove", onBodyHover),
    listen(body, "mouseleave", () => (readout.textContent = "")),
    listen(scroller, "scroll", () => {
      if (scrollFrame) return;
      scrollFrame = requestAnimationFrame(() => {
        scrollFrame = 0;
        drawVisibleRows();
      });
    }),
    () => cancelAnimationFrame(scrollFrame),
    listen(queryBand, "mousemove", (event) => {
      if (!shownRow) return;
      const d = Math.floor((event.clientX - queryBand.getBoundingClientRect().left) / shownRow.geometry.dimWidth);
      if (d >= 0 && d < shownRow.record.dim) readout.textContent = describeDimension(null, d);
    }),
  );

  function update(): void {
    const info = selection.info;
    if (info && (!builtQueries || builtQueries.query !== info.query)) buildQueries(info);
    // The selected token is pressed; the one shown by default is only outlined.
    const token = selection.token;
    const shownToken = shownQuery(selection);
    queryButtons.forEach((button, i) => {
      button.setAttribute("aria-pressed", String(i === token));
      button.classList.toggle("aw-tok--focus", i === shownToken && token === null);
    });
    chips.update();
    legendBar.style.background = divergingGradient(ctx.dark());
    const sharing = info ? sharingCaption(selection.head, info.stack.kv_head_of) : null;
    const where = info && info.stack.name !== "self" ? `${info.stack.name} attention · ` : "";
    caption.textContent = info ? `${where}layer ${layerLabel(info.stack, selection.layer)} · head ${selection.head}${sharing ? ` · ${sharing}` : ""}` : "";
    draw();
  }

  update();
  return viewOf(element, life, update, snapshot);
}
