// anywidget entry point: wiring only. initialize() runs once per model, render() once per
// displayed view of it (a model may be shown several times); each returns its cleanup.
//
// The bundle is plain ESM with no imports: no UMD wrapper, so the RequireJS `define` that
// classic Notebook and some VS Code renderers put on the page is never called (build.mjs checks).

import "./styles.css";
import { mountApp } from "./app";
import { ChunkStore, listenForChunks } from "./chunks";
import type { WidgetModel } from "./contract";
import { listenForTopKeys } from "./head/store";
import { listenForQueryKeys } from "./neuron/store";
import { listenForTiles } from "./tiles";

export default {
  initialize({ model }: { model: WidgetModel }): () => void {
    const stops = [listenForChunks(model), listenForQueryKeys(model), listenForTiles(model), listenForTopKeys(model)];
    return () => stops.forEach((stop) => stop());
  },
  render({ model, el }: { model: WidgetModel; el: HTMLElement }): () => void {
    return mountApp(el, model, new ChunkStore(model));
  },
};
