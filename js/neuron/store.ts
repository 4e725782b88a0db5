// Query-key records for the neuron view: from the preloaded `_qk` trait when Python sent
// them, otherwise asked for once per layer, like attention chunks (js/chunks.ts).

import { LayerStore, listenForLayers, type LayerKind } from "../chunks";
import { WHAT, decodeQueryKey, type QueryKeyLayer, type WidgetModel } from "../contract";

export const NO_QUERY_KEY =
  "This widget has no queries or keys: it was made from attention tensors alone. " +
  "Create it from the model, AttentionWidget(model, text), to see the neuron view.";

const QUERY_KEY: LayerKind<QueryKeyLayer> = {
  what: WHAT.queryKey,
  decode: decodeQueryKey,
  unaskable(meta, key) {
    if (!meta.query_key?.available) return NO_QUERY_KEY;
    // Nobody would answer (an exported page): what is not in `_qk` was left out of it.
    return meta.query_key.complete ? `the queries and keys of ${key} are not in this page` : null;
  },
};

export const listenForQueryKeys = (model: WidgetModel) => listenForLayers(model, QUERY_KEY);

export class QueryKeyStore extends LayerStore<QueryKeyLayer> {
  constructor(model: WidgetModel) {
    super(model, QUERY_KEY);
  }

  /** Whether the capture recorded queries and keys at all. */
  available(): boolean {
    return !!this.model.get("meta")?.query_key?.available;
  }
}
