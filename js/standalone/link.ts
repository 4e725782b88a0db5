// The linked selection of a page of widgets side by side (`Comparison.to_html`, two runs over different tokens): what
// is selected in one moves the others wherever they have it, by the rule src/attnwidget/comparison.py applies in the
// notebook. Stack, layer, head, view, score and theme always, when valid there (a stack is fitted as a click fits it);
// the token only when every widget has as many tokens on every side, since an index into other tokens names another
// word. A value a widget cannot take leaves it where it is.

import type { WidgetModel } from "../contract";
import { Selection } from "../selection";

const isIndex = (value: number, count: number | undefined) => Number.isInteger(value) && value >= 0 && value < (count ?? 0);

/** Token counts of every side, as one comparable string. */
const tokenCounts = (selection: Selection) =>
  JSON.stringify(Object.entries(selection.meta?.sides ?? {}).map(([name, side]) => [name, side.tokens.length]).sort());

/** Link the selections of `models`; returns what unlinks them. */
export function linkSelections(models: WidgetModel[]): () => void {
  const selections = models.map((model) => new Selection(model));
  const linksToken = new Set(selections.map(tokenCounts)).size === 1;
  let following = false; // a change made here is not followed back
  const unsubscribe = selections.map((source) =>
    source.subscribe((trait) => {
      if (following) return;
      following = true;
      try {
        for (const target of selections) if (target !== source) follow(source, target, trait, linksToken);
      } finally {
        following = false;
      }
    }),
  );
  return () => {
    unsubscribe.forEach((off) => off());
    selections.forEach((selection) => selection.dispose());
  };
}

function follow(source: Selection, target: Selection, trait: string, linksToken: boolean): void {
  const stack = target.info?.stack;
  if (trait === "stack") target.setStack(source.stack);
  else if (trait === "layer" && isIndex(source.layer, stack?.layers)) target.setLayer(source.layer);
  else if (trait === "head" && isIndex(source.head, stack?.heads)) target.setHead(source.head);
  else if (trait === "view") target.setView(source.view);
  else if (trait === "score") target.setScore(source.model.get("score") ?? "");
  else if (trait === "theme") target.setTheme(source.theme);
  else if (trait === "token" && linksToken) target.setToken(source.token);
}
