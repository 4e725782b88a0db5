// The one selection state every view reads and writes. It holds nothing itself: it reads
// the model, writes through model.set + save_changes, and tells its listeners when a trait
// changed, whoever changed it (a click here, another view, or Python).

import {
  PAIR_FILTERS,
  THEMES,
  VIEW_NAMES,
  WATCHED_TRAITS,
  pairFilterApplies,
  stackInfo,
  stepOfRow,
  stepRow,
  tokenOnSide,
  type GenerationMeta,
  type Meta,
  type PairFilter,
  type ScoreMeta,
  type StackInfo,
  type Theme,
  type Traits,
  type ViewName,
  type WatchedTrait,
  type WidgetModel,
  type WritableTrait,
} from "./contract";

export type SelectionListener = (trait: WatchedTrait) => void;


const clamp = (value: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, value));
const isIndex = (value: unknown, count: number): value is number =>
  Number.isInteger(value) && (value as number) >= 0 && (value as number) < count;

export class Selection {
  private listeners = new Set<SelectionListener>();
  private unwatch: () => void;

  constructor(readonly model: WidgetModel) {
    const handlers = WATCHED_TRAITS.map((trait) => {
      const handler = () => this.listeners.forEach((listener) => listener(trait));
      model.on(`change:${trait}`, handler);
      return () => model.off(`change:${trait}`, handler);
    });
    this.unwatch = () => handlers.forEach((off) => off());
  }

  subscribe(listener: SelectionListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  dispose(): void {
    this.unwatch();
    this.listeners.clear();
  }

  // -- reading: always a value the views can use, even if the model holds a stale one ----

  get meta(): Meta | null {
    const meta = this.model.get("meta");
    return meta && Array.isArray(meta.stacks) && meta.stacks.length > 0 ? meta : null;
  }

  /** The selected stack with its token sides; falls back to the first stack. */
  get info(): StackInfo | null {
    const meta = this.meta;
    if (!meta) return null;
    return stackInfo(meta, this.model.get("stack")) ?? stackInfo(meta, meta.stacks[0].name);
  }

  get stack(): string {
    return this.info?.stack.name ?? "";
  }

  get layer(): number {
    return clamp(this.model.get("layer") | 0, 0, Math.max(0, (this.info?.stack.layers ?? 1) - 1));
  }

  get head(): number {
    return clamp(this.model.get("head") | 0, 0, Math.max(0, (this.info?.stack.heads ?? 1) - 1));
  }

  get heads(): number[] {
    return this.validHeads(this.model.get("heads") ?? [], this.info?.stack.heads ?? 0);
  }

  get token(): number | null {
    const token = this.model.get("token");
    return isIndex(token, this.info?.query.tokens.length ?? 0) ? token : null;
  }

  get view(): ViewName {
    const view = this.model.get("view");
    return VIEW_NAMES.includes(view) ? view : "head";
  }

  get theme(): Theme {
    const theme = this.model.get("theme");
    return THEMES.includes(theme) ? theme : "auto";
  }

  get pairFilter(): PairFilter {
    const filter = this.model.get("pair_filter");
    return PAIR_FILTERS.includes(filter) ? filter : "all";
  }

  /** The chosen head score, when meta has scores of that name; null for none. */
  get score(): { index: number; meta: ScoreMeta } | null {
    const name = this.model.get("score");
    const scores = this.meta?.head_scores?.scores ?? [];
    const index = scores.findIndex((score) => score.name === name);
    return index < 0 ? null : { index, meta: scores[index] };
  }

  /** Where a generated capture's steps are; null for every other widget. */
  get generation(): GenerationMeta | null {
    const generation = this.meta?.generation;
    return generation && generation.steps > 0 ? generation : null;
  }

  get step(): number | null {
    const step = this.model.get("step");
    return isIndex(step, this.generation?.steps ?? 0) ? step : null;
  }

  // -- writing: validated first; an out-of-range request is clamped or ignored -------------

  setLayer(layer: number): void {
    const layers = this.info?.stack.layers ?? 0;
    if (layers > 0 && Number.isFinite(layer)) this.write({ layer: clamp(Math.round(layer), 0, layers - 1) });
  }

  setHead(head: number): void {
    const count = this.info?.stack.heads ?? 0;
    if (count > 0 && Number.isFinite(head)) this.write({ head: clamp(Math.round(head), 0, count - 1) });
  }

  /** Show or hide one head, and focus it. */
  toggleHead(head: number): void {
    if (!isIndex(head, this.info?.stack.heads ?? 0)) return;
    const visible = this.heads;
    const heads = visible.includes(head) ? visible.filter((h) => h !== head) : [...visible, head];
    this.write({ heads: this.validHeads(heads, this.info!.stack.heads), head });
  }

  /** Show only this head, focused. */
  soloHead(head: number): void {
    if (isIndex(head, this.info?.stack.heads ?? 0)) this.write({ heads: [head], head });
  }

  /** Show every head, keeping the focus. */
  showAllHeads(): void {
    const count = this.info?.stack.heads ?? 0;
    if (count > 0) this.write({ heads: [...Array(count).keys()] });
  }

  setToken(token: number | null): void {
    if (token === null || isIndex(token, this.info?.query.tokens.length ?? 0)) this.write({ token });
  }

  /** Layer and head of one model-view cell, shown in the head view with that head visible. */
  selectCell(layer: number, head: number): void {
    const info = this.info;
    if (!info || !isIndex(layer, info.stack.layers) || !isIndex(head, info.stack.heads)) return;
    const heads = this.heads.includes(head) ? this.heads : this.validHeads([...this.heads, head], info.stack.heads);
    this.write({ layer, head, heads, view: "head" });
  }

  /**
   * Switch stack, fitting the rest of the selection to it in the same write, by the rule both
   * sides test (tests/fixtures/stack_fit.json): layer and head clamped; the visible heads it has,
   * or all of its heads when none remain; the token on the same query side, as its word on the side of its words
   * and as a word's first token on the side of its tokens, else none (an index on another side names another
   * token); the pair filter only where it still applies.
   */
  setStack(name: string): void {
    const fitted = this.fittedTo(name);
    if (fitted) this.write(fitted);
  }

  /**
   * Show generation step `step`: select its query row as the token, on the generation's stack when the selected
   * one reads other queries (the encoder's). Out of range is clamped; null clears the step and its token.
   */
  setStep(step: number | null): void {
    const generation = this.generation;
    if (!generation || (step !== null && !Number.isFinite(step))) return;
    if (step === null) return this.write(this.step === null ? {} : { token: null, step: null });
    const clamped = clamp(Math.round(step), 0, generation.steps - 1);
    const onSide = this.info?.stack.query_side === generation.side;
    this.write({ ...(onSide ? {} : this.fittedTo(generation.stack)), token: stepRow(generation, clamped), step: clamped });
  }

  /** The selection fitted to stack `name`, or null when it does not exist or is the selected one. */
  private fittedTo(name: string): Partial<Pick<Traits, WritableTrait>> | null {
    const next = stackInfo(this.meta, name);
    const current = this.info;
    if (!next || !current || next.stack.name === current.stack.name) return null;
    const heads = this.validHeads(this.heads, next.stack.heads);
    return {
      stack: name,
      layer: clamp(this.layer, 0, next.stack.layers - 1),
      head: clamp(this.head, 0, next.stack.heads - 1),
      heads: heads.length > 0 ? heads : [...Array(next.stack.heads).keys()],
      token: tokenOnSide(this.meta!, this.token, current.stack.query_side, next.stack.query_side),
      pair_filter: pairFilterApplies(next) ? this.pairFilter : "all",
    };
  }

  setView(view: ViewName): void {
    if (VIEW_NAMES.includes(view)) this.write({ view });
  }

  setTheme(theme: Theme): void {
    if (THEMES.includes(theme)) this.write({ theme });
  }

  /** Choose the head score the model view shows ("" for none); a name meta does not have is ignored. */
  setScore(name: string): void {
    if (name === "" || this.meta?.head_scores?.scores.some((score) => score.name === name)) this.write({ score: name });
  }

  setPairFilter(filter: PairFilter): void {
    if (PAIR_FILTERS.includes(filter)) this.write({ pair_filter: filter });
  }

  private validHeads(heads: readonly unknown[], count: number): number[] {
    const valid = heads.filter((h): h is number => isIndex(h, count));
    return [...new Set(valid)].sort((a, b) => a - b);
  }

  /**
   * One save for several traits, and only when something differs, so Python sees one change. A generated
   * capture's step follows the token (and the stack) in the same save: the step of the token's row, if any.
   */
  private write(values: Partial<Pick<Traits, WritableTrait>>): void {
    const generation = this.generation;
    if (generation && !("step" in values) && ("token" in values || "stack" in values)) {
      const stack = stackInfo(this.meta, values.stack ?? this.stack)?.stack;
      const token = values.token !== undefined ? values.token : this.token;
      values = { ...values, step: stack?.query_side === generation.side ? stepOfRow(generation, token) : null };
    }
    let changed = false;
    for (const trait of Object.keys(values) as WritableTrait[]) {
      const value = values[trait];
      if (sameValue(this.model.get(trait), value)) continue;
      // Backbone applies set() synchronously and fires change:<trait>, which is how every view hears of it.
      this.model.set(trait, value as never);
      changed = true;
    }
    if (changed) this.model.save_changes();
  }
}

function sameValue(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => x === b[i]);
  return a === b;
}
