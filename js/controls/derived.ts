// The toolbar's choice among a recorded stack and the stacks derived from it (docs/data-contract.md, "Derived
// stacks"): the "Attention" select names the recorded stack, "Weights" what its heads show (attention, rollout, ...)
// and "Words" whether at word level. The three only pick which stack the `stack` trait names, through
// Selection.setStack, so the trait stays the one source of truth and the selection fits as for any stack change.

import type { DerivedMeta, Meta, StackMeta } from "../contract";
import { el, listen } from "../draw/dom";
import type { Selection } from "../selection";
import { labelledSelect, setOptions } from "../views/parts";

const ATTENTION = "attention";
/** How the Weights select names a measure; a measure not listed here shows its own name. */
const MEASURE_LABELS: Record<string, string> = { attention: "attention", rollout: "rollout", value: "value-weighted" };
const STACK_LABELS: Record<string, string> = { self: "Self", encoder: "Encoder", decoder: "Decoder", cross: "Cross" };

/** What a stack is: its recorded base, measure and word level (a recorded stack is its own base's attention). */
export function derivationOf(stack: StackMeta): DerivedMeta {
  return stack.derived ?? { from: stack.name, measure: ATTENTION, words: false };
}

/** The stack showing `measure` of recorded stack `base`, at word level or not; null when meta has none. */
export function stackFor(meta: Meta, base: string, measure: string, words: boolean): string | null {
  const found = meta.stacks.find((stack) => {
    const derivation = derivationOf(stack);
    return derivation.from === base && derivation.measure === measure && derivation.words === words;
  });
  return found?.name ?? null;
}

/** The measures of recorded stack `base` meta has, in its order, attention first. */
export function measuresOf(meta: Meta, base: string): string[] {
  const measures = meta.stacks.map(derivationOf).filter((d) => d.from === base).map((d) => d.measure);
  return [...new Set([ATTENTION, ...measures])];
}

/**
 * The stack for a new choice of base, measure or words, keeping the others where that stack exists: a measure
 * without words for the base drops the word level rather than the measure, and a base without the measure falls back
 * to its attention.
 */
export function chosenStack(meta: Meta, base: string, measure: string, words: boolean): string {
  return (
    stackFor(meta, base, measure, words) ??
    stackFor(meta, base, measure, false) ??
    stackFor(meta, base, ATTENTION, words) ??
    base
  );
}

export interface DerivedControls {
  /** The fields, in toolbar order: Attention, Weights, Words. */
  fields: HTMLElement[];
  update(): void;
  dispose(): void;
}

export function derivedControls(selection: Selection): DerivedControls {
  const stackField = labelledSelect("Attention");
  const weightsField = labelledSelect("Weights");
  const words = el("input", { type: "checkbox", "aria-label": "Words" });
  const wordsField = el("label", { class: "aw-field", title: "Sum each word's tokens as keys and average them as queries" });
  wordsField.append(words, el("span", { class: "aw-field-name" }, "Words"));

  /** The current base, measure and word level. */
  const current = (): DerivedMeta | null => {
    const stack = selection.info?.stack;
    return stack ? derivationOf(stack) : null;
  };
  const choose = (change: Partial<DerivedMeta>) => {
    const meta = selection.meta;
    const now = current();
    if (!meta || !now) return;
    const next = { ...now, ...change };
    selection.setStack(chosenStack(meta, next.from, next.measure, next.words));
  };
  const cleanups = [
    listen(stackField.select, "change", () => choose({ from: stackField.select.value })),
    listen(weightsField.select, "change", () => choose({ measure: weightsField.select.value })),
    listen(words, "change", () => choose({ words: words.checked })),
  ];

  function update(): void {
    const meta = selection.meta;
    const now = current();
    if (!meta || !now) {
      [stackField.field, weightsField.field, wordsField].forEach((field) => (field.hidden = true));
      return;
    }
    const recorded = meta.stacks.filter((stack) => !stack.derived);
    stackField.field.hidden = recorded.length < 2;
    setOptions(stackField.select, recorded.map((s) => [s.name, STACK_LABELS[s.name] ?? s.name]));
    stackField.select.value = now.from;
    const measures = measuresOf(meta, now.from);
    weightsField.field.hidden = measures.length < 2;
    setOptions(weightsField.select, measures.map((m) => [m, MEASURE_LABELS[m] ?? m]));
    weightsField.select.value = now.measure;
    wordsField.hidden = stackFor(meta, now.from, now.measure, !now.words) === null;
    words.checked = now.words;
  }

  return { fields: [stackField.field, weightsField.field, wordsField], update, dispose: () => cleanups.forEach((off) => off()) };
}
