// Head view: query tokens on the left, key tokens on the right, and between them one line
// per (query, key) pair of every visible head, as strong as the attention.

import { byteToProbability, pairFilterApplies, type PairFilter, type StackInfo, type TokenSide, type WatchedTrait } from "../contract";
import { prepareCanvas, observeSize } from "../draw/canvas";
import { css, headColor } from "../draw/colors";
import { el, listen, listenKeys } from "../draw/dom";
import { CHIP_ROW_HEIGHT, headChipsWidth, paintHeadChips, paintToken, tokenColumnWidth } from "../draw/paint";
import type { Painter } from "../draw/painter";
import { UI_FONT, ink } from "../draw/text";
import { SHOW_GESTURES, headChips } from "./chips";
import { hintLine, scrollBox } from "./parts";
import { Lifetime, selectedHeads, viewOf, type Snapshot, type View, type ViewContext } from "./view";

/** Height of one token row in CSS pixels; the canvas places line ends by it. */
export const ROW_HEIGHT = 20;

/** Which lines the overview (no token in focus) leaves out: the invisible ones, costly at n². */
const OVERVIEW = {
  /** Lines weaker than this byte (≈1%). */
  minByte: 3,
  /** Beyond this many candidate lines, only lines of at least `minByteLarge` (≈10%), to stay fast. */
  budget: 1_000_000,
  minByteLarge: 26,
};
const ALPHA_LEVELS = 16;
/** Height of the "query" / "key" labels over the token columns in a saved image. */
const LABEL_ROW = 16;
/** Width of the lines in a saved image when the view has not been laid out. */
const IMAGE_LINES_WIDTH = 240;

type Focus = { side: "query" | "key"; index: number };
/** The attention of the visible heads that is here, by head. */
type HeadChunks = ReadonlyMap<number, Uint8Array>;

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

export function headView(ctx: ViewContext): View {
  const { selection } = ctx;
  const chips = headChips(ctx, "show");
  const queryColumn = el("div", { class: "aw-tokens aw-tokens--query", role: "group", "aria-label": "Query tokens" });
  const keyColumn = el("div", { class: "aw-tokens aw-tokens--key", "aria-label": "Key tokens", role: "group" });
  const canvasBox = el("div", { class: "aw-lines" });
  const canvas = el("canvas", { "aria-hidden": "true" });
  canvasBox.append(canvas);
  const status = el("p", { class: "aw-status", role: "status" });
  const pair = el("div", { class: "aw-pair" });
  // Which side is which, above each column: a row of the same grid.
  const columnLabel = (side: Focus["side"]) => el("span", { class: `aw-col-label aw-col-label--${side}`, "aria-hidden": "true" }, side);
  pair.append(columnLabel("query"), el("span"), columnLabel("key"), queryColumn, canvasBox, keyColumn);
  const scroller = scrollBox(pair);
  const hint = hintLine(
    `Hover a token to see only its lines, click to pin it. ↑↓ token · ←→ head · Esc unpin · ${SHOW_GESTURES}.`,
  );
  const element = el("section", { class: "aw-view aw-headview", "aria-label": "Head view" });
  element.style.setProperty("--aw-row", `${ROW_HEIGHT}px`);
  element.append(chips.element, status, scroller, hint);

  const life = new Lifetime();
  let builtFor: StackInfo | null = null;
  let queryTokens: HTMLButtonElement[] = [];
  let keyTokens: HTMLSpanElement[] = [];
  let hovered: Focus | null = null;
  let boxWidth = 0;

  function buildColumns(info: StackInfo): void {
    const token = (side: TokenSide, i: number, tag: "button" | "span") =>
      el(tag, { class: side.special[i] ? "aw-tok aw-tok--special" : "aw-tok", "data-index": i, title: side.tokens[i] }, side.tokens[i]);
    queryTokens = info.query.tokens.map((_, i) => {
      const button = token(info.query, i, "button") as HTMLButtonElement;
      button.type = "button";
      return button;
    });
    keyTokens = info.key.tokens.map((_, i) => token(info.key, i, "span"));
    queryColumn.replaceChildren(...queryTokens);
    keyColumn.replaceChildren(...keyTokens);
    const rows = Math.max(queryTokens.length, keyTokens.length);
    canvasBox.style.height = `${rows * ROW_HEIGHT}px`;
    builtFor = info;
  }

  function focusOf(): Focus | null {
    if (hovered) return hovered;
    const token = selection.token;
    return token === null ? null : { side: "query", index: token };
  }

  function draw(): void {
    const info = selection.info;
    if (!info) return;
    const chunks = selectedHeads(ctx, life, status, draw, selection.heads);
    const focus = focusOf();
    paintTokens(info, chunks, focus);
    const height = Math.max(queryTokens.length, keyTokens.length) * ROW_HEIGHT;
    const g = prepareCanvas(canvas, boxWidth, height);
    if (!g) return;
    g.clearRect(0, 0, boxWidth, height);
    drawLines(g, info, chunks, focus, boxWidth);
  }

  /** Pinned and focused tokens, and the focused head's attention as a tint on the other side. */
  function paintTokens(info: StackInfo, chunks: HeadChunks, focus: Focus | null): void {
    const pinned = selection.token;
    queryTokens.forEach((button, i) => {
      button.setAttribute("aria-pressed", String(i === pinned));
      button.classList.toggle("aw-tok--focus", focus?.side === "query" && focus.index === i);
    });
    keyTokens.forEach((span, k) => span.classList.toggle("aw-tok--focus", focus?.side === "key" && focus.index === k));
    const tint = tintOf(info, chunks, focus);
    queryTokens.forEach((node, q) => (node.style.backgroundColor = tint("query", q) ?? ""));
    keyTokens.forEach((node, k) => (node.style.backgroundColor = tint("key", k) ?? ""));
  }

  /** The focused head's attention between the focused token and each token of the other side, as a background colour. */
  function tintOf(info: StackInfo, chunks: HeadChunks, focus: Focus | null): (side: Focus["side"], i: number) => string | null {
    const head = selection.head;
    const meta = selection.meta;
    const bytes = chunks.get(head);
    if (!bytes || !meta || !focus || !selection.heads.includes(head)) return () => null;
    const nk = info.key.tokens.length;
    const color = headColor(head, info.stack.heads, ctx.dark());
    return (side, i) => {
      if (side === focus.side) return null;
      const byte = side === "query" ? bytes[i * nk + focus.index] : bytes[focus.index * nk + i];
      return byte ? css(color, Math.min(0.45, byteToProbability(byte, meta))) : null;
    };
  }

  /** Heads, tokens and lines for the selection (the pinned token, never the hovered one). */
  function snapshot(): Snapshot | null {
    const info = selection.info;
    if (!info) return null;
    const chunks = new Map<number, Uint8Array>();
    for (const head of selection.heads) {
      const bytes = ctx.chunks.peek({ stack: info.stack.name, layer: selection.layer, head });
      if (!bytes) return null; // still loading: nothing complete to picture
      chunks.set(head, bytes);
    }
    const pinned = selection.token;
    const focus: Focus | null = pinned === null ? null : { side: "query", index: pinned };
    const tint = tintOf(info, chunks, focus);
    const dark = ctx.dark();
    const queryWidth = tokenColumnWidth(info.query.tokens);
    const keyWidth = tokenColumnWidth(info.key.tokens);
    const linesWidth = boxWidth > 0 ? boxWidth : IMAGE_LINES_WIDTH;
    const rows = Math.max(info.query.tokens.length, info.key.tokens.length);
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
        const column = (side: TokenSide, which: Focus["side"], x: number, width: number) =>
          side.tokens.forEach((text, i) =>
            paintToken(g, text, x, top + i * ROW_HEIGHT, width, ROW_HEIGHT, {
              align: which === "query" ? "right" : "left",
              special: side.special[i],
              pinned: which === "query" && i === pinned,
              tint: tint(which, i),
              dark,
            }),
          );
        column(info.query, "query", 0, queryWidth);
        column(info.key, "key", queryWidth + linesWidth, keyWidth);
        g.save();
        g.translate(queryWidth, top);
        drawLines(g, info, chunks, focus, linesWidth);
        g.restore();
      },
    };
  }

  function drawLines(g: Painter, info: StackInfo, chunks: HeadChunks, focus: Focus | null, width: number): void {
    const nq = info.query.tokens.length;
    const nk = info.key.tokens.length;
    const allowed = pairAllowed(info, selection.pairFilter);
    const focused = selection.head;
    // The focused head last, so its lines lie on top.
    const heads = selection.heads.filter((h) => h !== focused);
    if (selection.heads.includes(focused)) heads.push(focused);
    const queries = focus?.side === "query" ? [focus.index] : [...Array(nq).keys()];
    const keys = focus?.side === "key" ? [focus.index] : [...Array(nk).keys()];
    const large = queries.length * keys.length * heads.length > OVERVIEW.budget;
    const minByte = focus ? 2 : large ? OVERVIEW.minByteLarge : OVERVIEW.minByte;
    const y = (i: number) => i * ROW_HEIGHT + ROW_HEIGHT / 2;
    const x0 = 2;
    const x1 = width - 2;
    const dark = ctx.dark();
    // With one token in focus, each head's lines end at its own height within the other
    // token's row, so their colours fan out instead of blending into grey.
    const fan = (head: number) => {
      const visible = selection.heads;
      if (!focus || visible.length < 2) return 0;
      return (visible.indexOf(head) / (visible.length - 1) - 0.5) * ROW_HEIGHT * 0.6;
    };
    g.lineCap = "round";
    for (const head of heads) {
      const bytes = chunks.get(head);
      if (!bytes) continue; // on its way: drawn when it arrives
      const dq = focus?.side === "key" ? fan(head) : 0;
      const dk = focus?.side === "query" ? fan(head) : 0;
      // Lines grouped by strength: one stroke per level instead of one per line.
      const levels: number[][] = Array.from({ length: ALPHA_LEVELS }, () => []);
      for (const q of queries) {
        const row = q * nk;
        for (const k of keys) {
          const byte = bytes[row + k];
          if (byte < minByte || !allowed(q, k)) continue;
          levels[Math.min(ALPHA_LEVELS - 1, (byte * ALPHA_LEVELS) >> 8)].push(y(q) + dq, y(k) + dk);
        }
      }
      g.strokeStyle = css(headColor(head, info.stack.heads, dark));
      g.lineWidth = head === focused && focus ? 2 : focus ? 1.5 : 1;
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
    }
    g.globalAlpha = 1;
  }

  function moveToken(step: number): void {
    const count = queryTokens.length;
    if (count === 0) return;
    const current = selection.token;
    const next = current === null ? (step > 0 ? 0 : count - 1) : Math.min(count - 1, Math.max(0, current + step));
    selection.setToken(next);
    queryTokens[next]?.focus({ preventScroll: true });
    revealPinned();
  }

  /** Scroll the token list (never the page: Python may pin a token any time) to the pinned token. */
  function revealPinned(): void {
    const token = selection.token;
    if (token === null) return;
    // The token column starts below the column labels.
    const columnTop = queryColumn.getBoundingClientRect().top - scroller.getBoundingClientRect().top + scroller.scrollTop;
    const top = columnTop + token * ROW_HEIGHT;
    const outside = top < scroller.scrollTop || top + ROW_HEIGHT > scroller.scrollTop + scroller.clientHeight;
    if (outside) scroller.scrollTop = top - scroller.clientHeight / 2;
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
    listen(queryColumn, "mouseover", hover("query")),
    listen(keyColumn, "mouseover", hover("key")),
    listen(queryColumn, "mouseleave", unhover),
    listen(keyColumn, "mouseleave", unhover),
    listen(queryColumn, "click", (event) => {
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
    draw();
    if (trait === "token") revealPinned();
  }

  update();
  // Sized last: the first measurement draws, now that the view is built.
  life.add(
    observeSize(canvasBox, (width) => {
      const first = boxWidth === 0;
      boxWidth = width;
      draw();
      if (first) revealPinned();
    }),
  );
  return viewOf(element, life, update, snapshot);
}
