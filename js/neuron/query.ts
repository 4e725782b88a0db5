// Which query token the neuron view shows.

import type { Selection } from "../selection";

/**
 * The selected `token`, else the first non-special query token (the first token when all are
 * special), so the view opens on something instead of empty. The default is only shown, never
 * written to `token`: Python's selection changes only when the user picks a token.
 */
export function shownQuery(selection: Selection): number | null {
  const token = selection.token;
  if (token !== null) return token;
  const query = selection.info?.query;
  if (!query || query.tokens.length === 0) return null;
  return Math.max(0, query.special.findIndex((special) => !special));
}

/**
 * At most this many query tokens are buttons at once. All 4096 of a long input made Chromium repaint and re-layer
 * them in every frame while the key rows scrolled (50–100 ms a frame; benchmarks/neuron_scroll_frames.py).
 */
export const QUERY_WINDOW = 256;

/**
 * The first query token of the buttons shown: `start` kept (within bounds) while its window holds `focus`, else the
 * window around `focus`. Every token is shown when there are at most QUERY_WINDOW.
 */
export function queryWindowStart(count: number, focus: number | null, start: number): number {
  const last = Math.max(0, count - QUERY_WINDOW);
  const holds = focus === null || (focus >= start && focus < start + QUERY_WINDOW);
  return Math.min(last, Math.max(0, holds ? start : focus - QUERY_WINDOW / 2));
}
