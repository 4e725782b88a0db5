// Query-key records for the neuron view, one head each: from the preloaded `_qk` trait when Python sent
// them, otherwise asked for, like attention chunks (js/chunks.ts).

import { DataStore, listenForData, type DataKindSpec } from "../chunks";
import { WHAT, decodeQueryKey, type DerivedMeta, type QueryKeyHead, type WidgetModel } from "../contract";

export const NO_QUERY_KEY =
  "This widget has no queries or keys: it was made from attention tensors alone. " +
  "Create it from the model, AttentionWidget(model, text), to see the neuron view.";

/** Why a derived stack (rollout, words) has no neuron view, and how to get to the heads it is computed from. */
export function noQueryKeyOfDerived(derived: DerivedMeta): string {
  const what = derived.measure === "attention" ? "the word-level attention" : `the ${derived.measure}${derived.words ? " at word level" : ""}`;
  const back = [derived.measure === "attention" ? "" : "Weights: attention", derived.words ? "Words off" : ""].filter(Boolean).join(" and ");
  return (
    `These heads are ${what} of ${derived.from}, computed from its attention: they have no queries or keys. ` +
    `Choose ${back} to see the queries and keys of ${derived.from}.`
  );
}

const QUERY_KEY: DataKindSpec<QueryKeyHead> = {
  what: WHAT.queryKey,
  decode: (meta, where, binary) => decodeQueryKey(meta, where.stack, where.layer, where.head ?? 0, binary),
  unaskable(meta, key) {
    if (!meta.query_key?.available) return NO_QUERY_KEY;
    // Nobody would answer (an exported page): what is not in `_qk` was left out of it.
    return meta.query_key.complete ? `the queries and keys of ${key} are not in this page` : null;
  },
  size: (record) =>
    [record.query, record.key, record.bias?.diagonal, record.bias?.key, record.bias?.whole, record.sinks?.data].reduce(
      (sum, array) => sum + (array?.byteLength ?? 0),
      0,
    ),
  // The neuron view shows one head at a time.
  kept: () => 1,
};

export const listenForQueryKeys = (model: WidgetModel) => listenForData(model, QUERY_KEY);

export class QueryKeyStore extends DataStore<QueryKeyHead> {
  constructor(model: WidgetModel) {
    super(model, QUERY_KEY);
  }

  /** Whether the capture recorded queries and keys at all. */
  available(): boolean {
    return !!this.model.get("meta")?.query_key?.available;
  }
}
