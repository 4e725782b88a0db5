// The synced traits (docs/data-contract.md), exactly as named in src/attnwidget/wire.py, and the `meta` JSON.
// Renaming a trait here (or in Python) must turn every reader into a type error.

import type { ImageAnswer, Request } from "./messages";

export type ViewName = "head" | "model" | "neuron" | "matrix";
export type Theme = "auto" | "light" | "dark";
export type PairFilter = "all" | "AA" | "AB" | "BA" | "BB";

export const VIEW_NAMES: readonly ViewName[] = ["head", "model", "neuron", "matrix"];
export const THEMES: readonly Theme[] = ["auto", "light", "dark"];
export const PAIR_FILTERS: readonly PairFilter[] = ["all", "AA", "AB", "BA", "BB"];

export interface TokenSide {
  tokens: string[];
  special: boolean[];
  segment_b_start: number | null;
  /** On a side of words (a derived stack's): the side whose tokens they group and each word's first token there;
   * null (absent before contract version 7) on a side of tokens. */
  words?: WordsMeta | null;
}

export interface WordsMeta {
  of: string;
  /** Word w is tokens starts[w] up to starts[w + 1] of side `of`. */
  starts: number[];
}

/** What a derived stack is computed from (docs/data-contract.md, "Derived stacks"). */
export interface DerivedMeta {
  /** The recorded stack it is computed from. */
  from: string;
  /** "attention" (the base's heads), "rollout", or a measure added later ("value"). */
  measure: string;
  /** Whether both token sides are words. */
  words: boolean;
}

export interface StackMeta {
  name: string;
  query_side: string;
  key_side: string;
  layers: number;
  heads: number;
  kv_head_of: number[];
  /** The model's own number of each captured layer ([1, 3] for a hybrid model attending in layers 1 and 3);
   * absent before contract version 2. Chunk keys, requests and the `layer` trait use the 0-based index. */
  layer_numbers?: number[];
  /** Per captured layer, whether its softmax has a sink, one more key that is no token of the text: its chunk
   * then ends with each query's sink weight, heads × n_query bytes. Absent before contract version 3. */
  has_sinks?: boolean[];
  /** What the stack's sink stands for; null without sinks. Absent before contract version 4 (see `sinkOf`). */
  sink?: SinkMeta | null;
  /** Null for a recorded stack; what a derived stack is computed from. Absent before contract version 7. */
  derived?: DerivedMeta | null;
}

/** How the page names a stack's sink: `label` ("<sink>", "<prompt>", "<global>") and what its weight goes to. */
export interface SinkMeta {
  label: string;
  /** What its weight goes to, a noun phrase: "the 32 prompt positions CPM-Ant puts before the text". */
  stands_for: string;
}

/** Before contract version 4 the only sinks were GPT-OSS's learned ones. */
const LEARNED_SINK: SinkMeta = { label: "<sink>", stands_for: "the head's learned attention sink" };

/** What a stack's sink stands for, as meta says (or GPT-OSS's, for a meta older than version 4). */
export function sinkOf(stack: StackMeta): SinkMeta {
  return stack.sink ?? LEARNED_SINK;
}

/** One head score the model view can colour, sort and filter by (docs/analysis.md defines each). */
export interface ScoreMeta {
  /** The `score` trait's value, and the column of `AttentionWidget.head_scores()`. */
  name: string;
  label: string;
  /** What it measures, for a tooltip. */
  about: string;
  /** Fixed bounds, so colours mean the same in every model; null: the stack's lowest and highest value. */
  range: [number, number] | null;
}

/** Scores of every head: `values[stack][layer][head][i]` is score `scores[i]`, null where it is not defined. */
export interface HeadScores {
  scores: ScoreMeta[];
  values: Record<string, (number | null)[][][]>;
}

export interface Meta {
  version: number;
  sides: Record<string, TokenSide>;
  stacks: StackMeta[];
  encoding: { dtype: "uint8"; scale: number };
  /** Every head's thumbnail in `_thumbs`: at most `size` rows and columns, each pixel the max of its block. */
  thumbnails: { size: number; pooling: "max" };
  /** Whether `_chunks` holds every head of every layer, so the browser never asks for one. */
  chunks_complete: boolean;
  /** Queries and keys for the neuron view: whether the capture has them, and whether `_qk` holds every layer. */
  query_key?: { available: boolean; complete: boolean };
  /** Every head's scores for the model view's atlas; null or absent when none were computed. */
  head_scores?: HeadScores | null;
  /** Only in a widget made by `AttentionWidget.generate`: where the generation steps' query rows are. */
  generation?: GenerationMeta;
}

/**
 * A generated capture's steps (docs/data-contract.md, "Generation steps"): step s is the query row
 * `first_row + s` of `side`, which produced the generated token at row `first_row + s + 1`.
 */
export interface GenerationMeta {
  /** The stack a step is shown in when the selected one reads other queries: "self", or "cross". */
  stack: string;
  /** The token side holding the generated tokens: "input" (decoder-only) or "decoder". */
  side: string;
  prompt_length: number;
  first_row: number;
  steps: number;
}

/** The query row of generation step `step`. */
export function stepRow(generation: GenerationMeta, step: number): number {
  return generation.first_row + step;
}

/** The step whose query row is `row`, or null: a prompt row, or the last token, which produced nothing. */
export function stepOfRow(generation: GenerationMeta, row: number | null): number | null {
  if (row === null) return null;
  const step = row - generation.first_row;
  return step >= 0 && step < generation.steps ? step : null;
}

/** A binary value as the widget manager hands it over: a DataView, sometimes a bare buffer. */
export type Binary = DataView | ArrayBuffer | ArrayBufferView;

/** The synced traits, exactly as named in src/attnwidget/wire.py. */
export interface Traits {
  layer: number;
  head: number;
  heads: number[];
  token: number | null;
  stack: string;
  view: ViewName;
  theme: Theme;
  pair_filter: PairFilter;
  /** The head score the model view colours, sorts and filters by; "" for none. */
  score: string;
  /** The generation step shown, or null; only widgets made by `generate` have steps. */
  step: number | null;
  meta: Meta;
  /** Preloaded attention, one head each, keyed "<stack>/<layer>/<head>". */
  _chunks: Record<string, Binary>;
  /** Every head's thumbnail, one value per layer, keyed "<stack>/<layer>". */
  _thumbs: Record<string, Binary>;
  /** Preloaded query-key records (neuron view), keyed like `_chunks`. */
  _qk: Record<string, Binary>;
}

/** The traits that hold data asked for when missing: attention by head key, query-key records by chunk key. */
export type BinaryTrait = "_chunks" | "_qk";

/** A trait whose change the views react to: `meta`, `_chunks` and `_thumbs` are data Python alone writes. */
export type WatchedTrait = WritableTrait | "meta" | "_chunks" | "_thumbs";

/** The traits the browser may write; `meta` and `_chunks` belong to Python. */
export type WritableTrait =
  | "layer"
  | "head"
  | "heads"
  | "token"
  | "stack"
  | "view"
  | "theme"
  | "pair_filter"
  | "score"
  | "step";
export const WRITABLE_TRAITS: readonly WritableTrait[] = [
  "layer",
  "head",
  "heads",
  "token",
  "stack",
  "view",
  "theme",
  "pair_filter",
  "score",
  "step",
];
// Data traits too: new data (or chunks arriving later than their meta) must redraw the views.
export const WATCHED_TRAITS: readonly WatchedTrait[] = [...WRITABLE_TRAITS, "meta", "_chunks", "_thumbs"];

export type CustomMessageHandler = (content: unknown, buffers: Binary[]) => void;

/** The part of the anywidget model we use, typed by our traits. */
export interface WidgetModel {
  get<K extends keyof Traits>(key: K): Traits[K];
  set<K extends WritableTrait>(key: K, value: Traits[K]): void;
  save_changes(): void;
  on(event: `change:${keyof Traits}`, callback: () => void): void;
  on(event: "msg:custom", callback: CustomMessageHandler): void;
  off(event: `change:${keyof Traits}`, callback: () => void): void;
  off(event: "msg:custom", callback: CustomMessageHandler): void;
  send(content: Request | ImageAnswer, callbacks?: unknown, buffers?: ArrayBuffer[]): void;
}

/** The stack's description plus its two token sides, or null if meta does not name it. */
export interface StackInfo {
  stack: StackMeta;
  query: TokenSide;
  key: TokenSide;
}

export function stackInfo(meta: Meta | null | undefined, name: string): StackInfo | null {
  const stack = meta?.stacks?.find((s) => s.name === name);
  if (!meta || !stack) return null;
  const query = meta.sides[stack.query_side];
  const key = meta.sides[stack.key_side];
  return query && key ? { stack, query, key } : null;
}

/** How a layer is named to people: by the model's own number, falling back to the index. */
export function layerLabel(stack: StackMeta | null | undefined, layer: number): string {
  return String(stack?.layer_numbers?.[layer] ?? layer);
}

/** The query token of side `to` that stands for `token` of side `from`: itself on the same side, the word holding it
 * on the side of its words, a word's first token on the side of the word's tokens, else null (an index on another
 * side names another token). */
export function tokenOnSide(meta: Meta, token: number | null, from: string, to: string): number | null {
  if (token === null || from === to) return token;
  const there = meta.sides[to]?.words;
  if (there?.of === from) return wordOfToken(there.starts, token);
  const here = meta.sides[from]?.words;
  if (here?.of === to) return here.starts[token] ?? null;
  return null;
}

/** The word holding `token`, from each word's first token (ascending from 0). */
export function wordOfToken(starts: readonly number[], token: number): number {
  let word = 0;
  while (word + 1 < starts.length && starts[word + 1] <= token) word++;
  return word;
}

/** Whether both token sides are sentence pairs, so that the pair filter means something. */
export function pairFilterApplies(info: StackInfo | null): boolean {
  return !!info && info.query.segment_b_start != null && info.key.segment_b_start != null;
}
