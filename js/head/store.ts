// A head's strongest keys per query (docs/data-contract.md, "Top keys"): what the head view asks Python for when the
// head's whole chunk is not in the browser, kept in the same kind of bounded cache as chunks (js/chunks.ts).

import { DataStore, listenForData, type DataKindSpec } from "../chunks";
import { WHAT, decodeTopKeys, type TopKeys, type WidgetModel } from "../contract";

/** Keys per query the head view asks for: the most its line control offers, so changing it never asks again. */
export const TOP_KEYS_ASKED = 32;

const TOP_KEYS: DataKindSpec<TopKeys> = {
  what: WHAT.topKeys,
  decode: decodeTopKeys,
  // An exported page's model answers with an error saying what it left out; the head view uses its chunks.
  unaskable: () => null,
  size: (top) => top.keys.byteLength + top.weights.byteLength,
  kept: (meta) => Math.max(1, ...meta.stacks.map((stack) => stack.heads)),
  askedWith: { k: TOP_KEYS_ASKED },
};

export const listenForTopKeys = (model: WidgetModel) => listenForData(model, TOP_KEYS);

export class TopKeysStore extends DataStore<TopKeys> {
  constructor(model: WidgetModel) {
    super(model, TOP_KEYS);
  }
}
