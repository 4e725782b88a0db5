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
