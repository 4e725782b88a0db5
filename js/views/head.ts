// Head view: query tokens on the left, key tokens on the right, and between them lines from each query to its
// strongest keys (or every key above a threshold) for every visible head, as strong as the attention.
//
// It stays fast at thousands of tokens: only the token rows in view are in the DOM (../head/rows.ts), each head's
// lines are painted on a layer of their own covering the view and a margin (../draw/layers.ts), and a frame
// composites the layers, so a hover repaints a few lines per head and a head switch or a short scroll none.

import { byteToProbability, isSigned, layerLabel, pairFilterApplies, type PairFilter, type StackInfo, type TokenSide, type WatchedTrait } from "../contract";
import { prepareCanvas, observeSize } from "../draw/canvas";
import { css, headColor } from "../draw/colors";
import { el, listen, listenKeys } from "../draw/dom";
import { Layers } from "../draw/layers";
import { CHIP_ROW_HEIGHT, headChipsWidth, paintHeadChips, paintToken, tokenColumnWidth } from "../draw/paint";
import type { Painter } from "../draw/painter";
import { UI_FONT, ink } from "../draw/text";
import {
  THRESHOLD_PERCENTS,
  TOP_K_CHOICES,
  defaultRule,
  headLines,
  magnitudeSource,
  parseRule,
  ruleValue,
  weightOf,
  type Focus,
  type HeadSource,
  type LineRule,
} from "../head/lines";
import { bandAround, bandHolds, endsInBand, rowWindow, type Band } from "../head/rows";
import { TOP_KEYS_ASKED, TopKeysStore } from "../head/store";
import { SHOW_GESTURES, headChips } from "./chips";
import { hintLine, labelledSelect, scrollBox } from "./parts";
import { Lifetime, selectedData, viewOf, type Snapshot, type View, type ViewContext } from "./view";

/** Height of one token row in CSS pixels; the canvas places line ends by it. */
export const ROW_HEIGHT = 20;

const ALPHA_LEVELS = 16;
/** Height of the "query" / "key" labels over the token columns in a saved image. */
const LABEL_ROW = 16;
/** Width of the lines in a saved image when the view has not been laid out. */
const IMAGE_LINES_WIDTH = 240;
/** Milliseconds a frame may spend repainting layers for a new band before leaving the rest to the next frames. */
const FRAME_BUDGET_MS = 8;
/** Layers wait for a new band until the list has not scrolled for this long, so scrolling frames only move them:
 *  the rows that come into view get their lines once the scroll pauses. */
const SCROLL_SETTLE_MS = 120;
/** The view's height when the page has not laid it out (jsdom, a hidden tab): about 30 rows. */
const UNLAID_VIEW_HEIGHT = 600;

/** What the head view shows of a signed stack, A − B: the size of the difference, not its sign. */
function differenceNote(info: StackInfo): string {
  const [a, b] = info.stack.difference_of ?? ["A", "B"];
  return `Lines show |${a} − ${b}|, how much the two runs differ, not which attends more: the matrix and model views show the sign; ${a} and ${b} show each run.`;
}

/** What the browser has of the visible heads, by head. */
type HeadSources = ReadonlyMap<number, HeadSource>;

/** Segment A is everything before segment_b_start. */
function inSegment(side: TokenSide, index: number, segment: "A" | "B"): boolean {
  const b = side.segment_b_start;
  return (b !== null && index >= b) === (segment === "B");
}

function pairAllowed(info: StackInfo, filter: PairFilter): (q: number, k: number) => boolean {
  if (filter === "all" || !pairFilterApplies(info)) return () => true;
  const [qs, ks] = [filter[0] as "A" | "B", filter[1] as "A" | "B"];
  return (q, k) => inSegment(info.query, q, qs) && inSegment(info.key, k, ks);
}

/** A number per data object, so a layer's signature can say which data it shows. */
const dataIds = new WeakMap<object, number>();
let lastDataId = 0;
function dataId(source: HeadSource): number {
  const data = "chunk" in source ? source.chunk : source.top;
  let id = dataIds.get(data);
  if (id === undefined) dataIds.set(data, (id = ++lastDataId));
  return id;
}

/** One virtual token column: the rows in the DOM by index. */
interface Column {
  element: HTMLElement;
  side: Focus["side"];
  rows: Map<number, HTMLElement>;
}

export function headView(ctx: ViewContext): View {
  const { selection } = ctx;
  const chips = headChips(ctx, "show");
  const topKeys = new TopKeysStore(selection.model);
  const column = (side: Focus["side"], label: string): Column => ({
    element: el("div", { class: `aw-tokens aw-tokens--${side}`, role: "group", "aria-label": label }),
    side,
    rows: new Map(),
  });
  const queryColumn = column("query", "Query tokens");
  const keyColumn = column("key", "Key tokens");
  const canvasBox = el("div", { class: "aw-lines" });
  const canvas = el("canvas", { "aria-hidden": "true" });
  canvasBox.append(canvas);
  const status = el("p", { class: "aw-status", role: "status" });
  const lineField = labelledSelect("Lines");
  lineField.select.title = "Draw each query's strongest keys, or every key above a share of its attention";
  for (const k of TOP_K_CHOICES) lineField.select.append(el("option", { value: `top:${k}` }, `top ${k} per query`));
  for (const p of THRESHOLD_PERCENTS) lineField.select.append(el("option", { value: `min:${p}` }, `≥ ${p}%`));
  const tools = el("div", { class: "aw-controls aw-head-tools" });
  tools.append(lineField.field, status);
  const pair = el("div", { class: "aw-pair" });
  // Which side is which, above each column: a row of the same grid.
  const columnLabel = (side: Focus["side"]) => el("span", { class: `aw-col-label aw-col-label--${side}`, "aria-hidden": "true" }, side);
  pair.append(columnLabel("query"), el("span"), columnLabel("key"), queryColumn.element, canvasBox, keyColumn.element);
  const scroller = scrollBox(pair);
  const hint = hintLine(
    `Hover a token to see only its lines, click to pin it. ↑↓ token · ←→ head · Esc unpin · ${SHOW_GESTURES}.`,
  );
  const element = el("section", { class: "aw-view aw-headview", "aria-label": "Head view" });
  element.style.setProperty("--aw-row", `${ROW_HEIGHT}px`);
  element.append(chips.element, tools, scroller, hint);

  const life = new Lifetime();
  const layers = new Layers<number, Band>();
  let builtFor: StackInfo | null = null;
  let hovered: Focus | null = null;
  /** The line rule the user picked, else null: the default for the input's length. */
  let chosenRule: LineRule | null = null;
  let boxWidth = 0;
  /** Where the token columns start in the scrolled content (below the column labels). */
  let columnTop = 0;
  let band: Band | null = null;
  let canvasSize = "";
  let repaintQueued = false;
  let lastScroll = -Infinity;

  const rowCount = (info: StackInfo) => Math.max(info.query.tokens.length, info.key.tokens.length);
  const ruleFor = (info: StackInfo) => chosenRule ?? defaultRule(info.key.tokens.length);

  function buildColumns(info: StackInfo): void {
    for (const [col, side] of [[queryColumn, info.query], [keyColumn, info.key]] as const) {
      col.rows.clear();
      col.element.replaceChildren();
      col.element.style.height = `${side.tokens.length * ROW_HEIGHT}px`;
      // Fixed, not from the rows in the DOM: the column must not change width as the user scrolls.
      col.element.style.width = `${tokenColumnWidth(side.tokens)}px`;
    }
    canvasBox.style.height = `${rowCount(info) * ROW_HEIGHT}px`;
    lineField.select.value = ruleValue(ruleFor(info));
    layers.clear();
    band = null;
    builtFor = info;
  }

  function tokenRow(side: TokenSide, col: Column, i: number): HTMLElement {
    const attributes = { class: side.special[i] ? "aw-tok aw-tok--special" : "aw-tok", "data-index": i, title: side.tokens[i] };
    const row = col.side === "query" ? el("button", { ...attributes, type: "button" }) : el("span", attributes);
    row.textContent = side.tokens[i];
    row.style.top = `${i * ROW_HEIGHT}px`;
    return row;
  }

  /** The part of the token columns in view: its top (from the columns' top; negative above them) and height. */
  function viewRange(): [top: number, height: number] {
    return [Math.round(scroller.scrollTop) - columnTop, scroller.clientHeight || UNLAID_VIEW_HEIGHT];
  }

  /** Put the rows in view (and a margin) in the DOM and take the others out, keeping rows that stay (and focus). */
  function renderRows(info: StackInfo): void {
    const [top, height] = viewRange();
    for (const [col, side] of [[queryColumn, info.query], [keyColumn, info.key]] as const) {
      const [first, last] = rowWindow(top, height, ROW_HEIGHT, side.tokens.length);
      for (const [i, row] of col.rows) {
        if (i >= first && i < last) continue;
        row.remove();
        col.rows.delete(i);
      }
      const kept = [...col.rows.keys()];
      const before: HTMLElement[] = [];
      const after: HTMLElement[] = [];
      for (let i = first; i < last; i++) {
        if (col.rows.has(i)) continue;
        const row = tokenRow(side, col, i);
        col.rows.set(i, row);
        (kept.length > 0 && i < kept[0] ? before : after).push(row);
      }
      // In index order in the DOM too, for Tab and screen readers.
      col.element.prepend(...before);
      col.element.append(...after);
    }
  }

  function focusOf(): Focus | null {
    if (hovered) return hovered;
    const token = selection.token;
    return token === null ? null : { side: "query", index: token };
  }

  /** The visible heads' data that is here, asking for the rest: a head's chunk when the browser has it, else its
   *  top keys. `status` says while they load, why they could not, or what a threshold is applied to. */
  function headSources(info: StackInfo): Map<number, HeadSource> {
    const layer = layerLabel(info.stack, selection.layer);
    const found = new Map<number, HeadSource>();
    let failed: string | null = null;
    // A signed head (A − B) draws lines as strong as |d|.
    const shown = isSigned(info) ? magnitudeSource : (source: HeadSource) => source;
    for (const head of selection.heads) {
      const where = { stack: selection.stack, layer: selection.layer, head };
      const chunk = ctx.chunks.peek(where);
      if (chunk) {
        found.set(head, shown({ chunk }));
        continue;
      }
      const top = selectedData(selection, topKeys, where, life, draw, (message) => {
        failed = `Could not load layer ${layer}: ${message}`;
        status.textContent = failed;
      });
      if (top) found.set(head, shown({ top }));
    }
    if (failed) return found;
    // Top keys of every key (a short input) leave nothing out.
    const nk = info.key.tokens.length;
    const sparse = [...found.values()].some((source) => "top" in source && source.top.k < nk);
    if (found.size < selection.heads.length) status.textContent = `Loading layer ${layer}…`;
    else if (sparse && ruleFor(info).mode === "threshold") status.textContent = `Threshold among each query's ${TOP_KEYS_ASKED} strongest keys.`;
    else if (isSigned(info)) status.textContent = differenceNote(info);
    else status.textContent = "";
    return found;
  }

  function draw(): void {
    const info = selection.info;
    if (!info) return;
    renderRows(info);
    const sources = headSources(info);
    const focus = focusOf();
    paintTokens(info, sources, focus);
    composite(info, sources, focus);
  }

  /** The visible heads, the focused one last so its lines lie on top. */
  function drawOrder(): number[] {
    const focused = selection.head;
    const heads = selection.heads.filter((h) => h !== focused);
    if (selection.heads.includes(focused)) heads.push(focused);
    return heads;
  }

  /** The lines canvas, as tall as the view, over the part of the columns in view: every visible head's layer.
   *  A layer whose lines changed is repainted now; one that only needs another band (after a scroll) once the
   *  scroll pauses, a frame budget's worth at a time, showing meanwhile what it has of the view, so scrolling never
   *  waits for lines. */
  function composite(info: StackInfo, sources: HeadSources, focus: Focus | null): void {
    const total = rowCount(info) * ROW_HEIGHT;
    const [viewTop, viewHeight] = viewRange();
    const height = Math.min(viewHeight, total);
    const top = Math.min(Math.max(0, viewTop), total - height);
    if (!band || !bandHolds(band, top, height)) band = bandAround(top, height, total);
    canvas.style.top = `${top}px`;
    const size = `${boxWidth}x${height}`;
    const g = size === canvasSize ? canvas.getContext("2d") : prepareCanvas(canvas, boxWidth, height);
    if (!g || boxWidth <= 0 || height <= 0) return;
    canvasSize = size;
    g.clearRect(0, 0, boxWidth, height);
    const shown = band;
    const rule = ruleValue(ruleFor(info));
    const context = `${selection.stack}/${selection.layer}|${rule}|${selection.pairFilter}|${ctx.dark()}|${boxWidth}`;
    const started = performance.now();
    let deferred = false;
    for (const head of drawOrder()) {
      const source = sources.get(head);
      if (!source) continue; // on its way: drawn when it arrives
      const style = lineStyle(head, focus);
      const signature = `${context}|${dataId(source)}|${focus?.side}${focus?.index}|${style.width}|${style.fan}`;
      let layer = layers.get(head);
      const sameLines = layer?.signature === signature;
      if (!sameLines || layer!.extent.top !== shown.top || layer!.extent.height !== shown.height) {
        // Only a new band waits: while the list is scrolling, and after the frame's first repaint (the time includes
        // the blits so far, which is when the browser rasterises a layer's lines).
        if (sameLines && (scrolling() || performance.now() - started > FRAME_BUDGET_MS)) deferred = true;
        else {
          const paint = (lg: Painter) => paintLines(lg, info, head, source, focus, shown, boxWidth);
          layer = layers.paint(head, signature, shown, boxWidth, shown.height, paint) ?? undefined;
        }
      }
      if (!layer) continue;
      // The layer's part that is in view (its band may be an older one, still waiting for its repaint); its
      // backing store may be at device resolution.
      const from = Math.max(top, layer.extent.top);
      const to = Math.min(top + height, layer.extent.top + layer.extent.height);
      if (to <= from) continue;
      const scale = layer.canvas.height / layer.extent.height;
      g.drawImage(layer.canvas, 0, (from - layer.extent.top) * scale, layer.canvas.width, (to - from) * scale, 0, from - top, boxWidth, to - from);
    }
    layers.keepOnly(selection.heads);
    if (deferred && !repaintQueued) {
      repaintQueued = true;
      const again = () => {
        repaintQueued = false;
        draw();
      };
      if (scrolling()) setTimeout(again, SCROLL_SETTLE_MS);
      else requestAnimationFrame(again);
    }
  }

  /** Whether the list scrolled within the last `SCROLL_SETTLE_MS`: its frames then only move layers. */
  const scrolling = () => performance.now() - lastScroll < SCROLL_SETTLE_MS;

  /** How one head's lines look: wider for the focused head while a token is in focus, and with a token in focus, each
   *  head's lines end at its own height within the other token's row, so their colours fan out instead of blending. */
  function lineStyle(head: number, focus: Focus | null): { width: number; fan: number } {
    const visible = selection.heads;
    const width = head === selection.head && focus ? 2 : focus ? 1.5 : 1;
    const fan = !focus || visible.length < 2 ? 0 : (visible.indexOf(head) / (visible.length - 1) - 0.5) * ROW_HEIGHT * 0.6;
    return { width, fan };
  }

  /** One head's lines with an end in `shown`, drawn with `shown.top` at y = 0. */
  function paintLines(g: Painter, info: StackInfo, head: number, source: HeadSource, focus: Focus | null, shown: Band, width: number): void {
    const nq = info.query.tokens.length;
    const nk = info.key.tokens.length;
    const lines = headLines(source, ruleFor(info), nq, nk, focus, pairAllowed(info, selection.pairFilter));
    const style = lineStyle(head, focus);
    const dq = focus?.side === "key" ? style.fan : 0;
    const dk = focus?.side === "query" ? style.fan : 0;
    const y = (i: number) => i * ROW_HEIGHT + ROW_HEIGHT / 2;
    // Lines grouped by strength: one stroke per level instead of one per line.
    const levels: number[][] = Array.from({ length: ALPHA_LEVELS }, () => []);
    for (let i = 0; i < lines.length; i += 3) {
      const [yq, yk] = [y(lines[i]) + dq, y(lines[i + 1]) + dk];
      if (endsInBand(shown, yq, yk)) levels[Math.min(ALPHA_LEVELS - 1, (lines[i + 2] * ALPHA_LEVELS) >> 8)].push(yq - shown.top, yk - shown.top);
    }
    g.lineCap = "round";
    g.strokeStyle = css(headColor(head, info.stack.heads, ctx.dark()));
    g.lineWidth = style.width;
    const [x0, x1] = [2, width - 2];
    levels.forEach((ends, level) => {
      if (ends.length === 0) return;
      const strength = (level + 0.5) / ALPHA_LEVELS;
      // Few lines when focused: let weak ones keep their colour.
      g.globalAlpha = focus ? 0.06 + 0.94 * strength : strength;
      g.beginPath();
      for (let i = 0; i < ends.length; i += 2) {
        g.moveTo(x0, ends[i]);
        g.lineTo(x1, ends[i + 1]);
      }
      g.stroke();
    });
    g.globalAlpha = 1;
  }

  /** Pinned and focused tokens among the rows in the DOM, and the focused head's attention as a tint on the other side. */
  function paintTokens(info: StackInfo, sources: HeadSources, focus: Focus | null): void {
    const pinned = selection.token;
    const tint = tintOf(info, sources, focus);
    for (const col of [queryColumn, keyColumn]) {
      for (const [i, row] of col.rows) {
        if (col.side === "query") row.setAttribute("aria-pressed", String(i === pinned));
        row.classList.toggle("aw-tok--focus", focus?.side === col.side && focus.index === i);
        row.style.backgroundColor = tint(col.side, i) ?? "";
      }
    }
  }

  /** The focused head's attention between the focused token and each token of the other side, as a background colour. */
  function tintOf(info: StackInfo, sources: HeadSources, focus: Focus | null): (side: Focus["side"], i: number) => string | null {
    const head = selection.head;
    const meta = selection.meta;
    const source = sources.get(head);
    if (!source || !meta || !focus || !selection.heads.includes(head)) return () => null;
    const nk = info.key.tokens.length;
    const color = headColor(head, info.stack.heads, ctx.dark());
    return (side, i) => {
      if (side === focus.side) return null;
      const byte = side === "query" ? weightOf(source, nk, i, focus.index) : weightOf(source, nk, focus.index, i);
      return byte ? css(color, Math.min(0.45, byteToProbability(byte, meta))) : null;
    };
  }

  /** Heads, tokens and lines for the selection (the pinned token, never the hovered one). */
  function snapshot(): Snapshot | null {
    const info = selection.info;
    if (!info) return null;
    const sources = new Map<number, HeadSource>();
    for (const head of selection.heads) {
      const where = { stack: info.stack.name, layer: selection.layer, head };
      const chunk = ctx.chunks.peek(where);
      const top = chunk ? undefined : topKeys.peek(where);
      if (!chunk && !top) return null; // still loading: nothing complete to picture
      sources.set(head, chunk ? { chunk } : { top: top! });
    }
    const pinned = selection.token;
    const focus: Focus | null = pinned === null ? null : { side: "query", index: pinned };
    const tint = tintOf(info, sources, focus);
    const dark = ctx.dark();
    const queryWidth = tokenColumnWidth(info.query.tokens);
    const keyWidth = tokenColumnWidth(info.key.tokens);
    const linesWidth = boxWidth > 0 ? boxWidth : IMAGE_LINES_WIDTH;
    const rows = rowCount(info);
    const whole: Band = { top: 0, height: rows * ROW_HEIGHT };
    return {
      width: Math.max(queryWidth + linesWidth + keyWidth, headChipsWidth(selection.heads.length)),
      height: CHIP_ROW_HEIGHT + LABEL_ROW + rows * ROW_HEIGHT,
      paint(g) {
        paintHeadChips(g, selection.heads, info.stack.heads, selection.head, dark);
        g.font = UI_FONT;
        g.fillStyle = ink(dark).muted;
        g.textBaseline = "middle";
        g.textAlign = "right";
        g.fillText("query", queryWidth - 6, CHIP_ROW_HEIGHT + LABEL_ROW / 2);
        g.textAlign = "left";
        g.fillText("key", queryWidth + linesWidth + 6, CHIP_ROW_HEIGHT + LABEL_ROW / 2);
        const top = CHIP_ROW_HEIGHT + LABEL_ROW;
        const paintColumn = (side: TokenSide, which: Focus["side"], x: number, width: number) =>
          side.tokens.forEach((text, i) =>
            paintToken(g, text, x, top + i * ROW_HEIGHT, width, ROW_HEIGHT, {
              align: which === "query" ? "right" : "left",
              special: side.special[i],
              pinned: which === "query" && i === pinned,
              tint: tint(which, i),
              dark,
            }),
          );
        paintColumn(info.query, "query", 0, queryWidth);
        paintColumn(info.key, "key", queryWidth + linesWidth, keyWidth);
        g.save();
        g.translate(queryWidth, top);
        for (const head of drawOrder()) paintLines(g, info, head, sources.get(head)!, focus, whole, linesWidth);
        g.restore();
      },
    };
  }

  function moveToken(step: number): void {
    const count = selection.info?.query.tokens.length ?? 0;
    if (count === 0) return;
    const current = selection.token;
    const next = current === null ? (step > 0 ? 0 : count - 1) : Math.min(count - 1, Math.max(0, current + step));
    selection.setToken(next);
    revealPinned();
    queryColumn.rows.get(next)?.focus({ preventScroll: true });
  }

  /** Scroll the token list (never the page: Python may pin a token any time) to the pinned token, and put its row in. */
  function revealPinned(): void {
    const token = selection.token;
    if (token === null) return;
    const top = columnTop + token * ROW_HEIGHT;
    const outside = top < scroller.scrollTop || top + ROW_HEIGHT > scroller.scrollTop + scroller.clientHeight;
    if (outside) scroller.scrollTop = top - scroller.clientHeight / 2;
    draw(); // now, not on the scroll event: the pinned row must be in the DOM for focus
  }

  /** Where the columns start in the scroller's content; only the layout moves it. */
  function measureColumnTop(): void {
    // Whole pixels: layers and the lines canvas then meet pixel for pixel, and blits never resample.
    columnTop = Math.round(canvasBox.getBoundingClientRect().top - scroller.getBoundingClientRect().top + scroller.scrollTop);
  }

  const tokenIndex = (event: Event) => Number((event.target as HTMLElement).closest<HTMLElement>(".aw-tok")?.dataset.index);
  const hover = (side: Focus["side"]) => (event: MouseEvent) => {
    const index = tokenIndex(event);
    if (Number.isInteger(index) && (hovered?.side !== side || hovered.index !== index)) {
      hovered = { side, index };
      draw();
    }
  };
  const unhover = () => {
    if (!hovered) return;
    hovered = null;
    draw();
  };

  life.add(
    chips.dispose,
    listen(scroller, "scroll", () => {
      lastScroll = performance.now();
      draw();
    }),
    listen(lineField.select, "change", () => {
      chosenRule = parseRule(lineField.select.value);
      draw();
    }),
    listen(queryColumn.element, "mouseover", hover("query")),
    listen(keyColumn.element, "mouseover", hover("key")),
    listen(queryColumn.element, "mouseleave", unhover),
    listen(keyColumn.element, "mouseleave", unhover),
    listen(queryColumn.element, "click", (event) => {
      const index = tokenIndex(event);
      if (!Number.isInteger(index)) return;
      selection.setToken(selection.token === index ? null : index);
    }),
    listenKeys(element, () => ({
      ArrowUp: () => moveToken(-1),
      ArrowDown: () => moveToken(1),
      ArrowLeft: () => {
        selection.setHead(selection.head - 1);
        chips.followFocus();
      },
      ArrowRight: () => {
        selection.setHead(selection.head + 1);
        chips.followFocus();
      },
      Escape: () => {
        hovered = null;
        selection.setToken(null);
      },
    })),
  );

  function update(trait?: WatchedTrait): void {
    const info = selection.info;
    if (!info) {
      status.textContent = "No attention to show.";
      return;
    }
    if (!builtFor || builtFor.query !== info.query || builtFor.key !== info.key || builtFor.stack !== info.stack) {
      hovered = null;
      buildColumns(info);
    }
    chips.update();
    if (trait === "token") revealPinned();
    else draw();
  }

  update();
  // Sized last: the first measurement draws, now that the view is built.
  life.add(
    observeSize(canvasBox, (width) => {
      const first = boxWidth === 0;
      boxWidth = width;
      measureColumnTop();
      if (first) revealPinned();
      draw();
    }),
  );
  return viewOf(element, life, update, snapshot);
}
