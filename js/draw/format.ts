// Numbers and names as the views and captions write them.

import type { PairFilter } from "../contract";

/** What the page shows for a number: three significant digits; the hover readout shows six. */
export function shown(value: number): string {
  if (value === -Infinity) return "masked";
  return value === 0 ? "0" : value.toPrecision(3);
}

/** A number to the six digits of the hover readout. */
export const exact = (value: number) => (value === 0 ? "0" : value.toPrecision(6));

/** A term added to a sum: "+ 0.5", "− 0.5". */
export const signed = (text: string) => (text.startsWith("-") ? `− ${text.slice(1)}` : `+ ${text}`);

/** "4–7" for a run of heads, "0, 2, 5" otherwise. */
export function headList(heads: number[]): string {
  const run = heads.every((h, i) => i === 0 || h === heads[i - 1] + 1);
  return run && heads.length > 2 ? `${heads[0]}–${heads[heads.length - 1]}` : heads.join(", ");
}

/** Each pair filter as the toolbar and image captions name it. */
export const PAIR_NAMES: Readonly<Record<PairFilter, string>> = { all: "All", AA: "A→A", AB: "A→B", BA: "B→A", BB: "B→B" };
