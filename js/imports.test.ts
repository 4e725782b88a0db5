// No import cycles in js/: modules form a tree (contract at the root, draw/ under the views,
// image/ over them), so any module can be read, tested and bundled on its own. Type-only and
// side-effect imports count too.

import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";

// Relative to the repository root, where vitest runs (npm test).
const ROOT = "js";
const STATIC_IMPORT = /^\s*(?:import|export)\s+(?:type\s+)?(?:[^"';]*?\s+from\s+)?["']([^"']+)["']/gm;
const DYNAMIC_IMPORT = /\bimport\(\s*["']([^"']+)["']\s*\)/g;

/** The .ts module a relative specifier names, or null for a package or a stylesheet. */
function resolve(from: string, specifier: string): string | null {
  if (!specifier.startsWith(".") || specifier.endsWith(".css")) return null;
  const base = join(dirname(from), specifier);
  const found = [base, `${base}.ts`, join(base, "index.ts")].find((path) => path.endsWith(".ts") && existsSync(path));
  if (!found) throw new Error(`${from} imports ${specifier}, which is no .ts module`);
  return found;
}

/** Every non-test module under js/ with the modules it imports. */
function importGraph(): Map<string, string[]> {
  const files = readdirSync(ROOT, { recursive: true })
    .filter((file) => file.endsWith(".ts") && !file.endsWith(".test.ts") && !file.endsWith(".d.ts"))
    .map((file) => join(ROOT, file));
  return new Map(
    files.map((file) => {
      const source = readFileSync(file, "utf8");
      const specifiers = [...source.matchAll(STATIC_IMPORT), ...source.matchAll(DYNAMIC_IMPORT)].map((match) => match[1]);
      return [file, specifiers.flatMap((specifier) => resolve(file, specifier) ?? [])];
    }),
  );
}

/** Each cycle once, as the path around it: "a.ts → b.ts → a.ts". */
export function findCycles(graph: Map<string, string[]>): string[] {
  const cycles = new Set<string>();
  const done = new Set<string>();
  const path: string[] = [];
  const visit = (node: string) => {
    const at = path.indexOf(node);
    if (at >= 0) {
      const loop = path.slice(at);
      // Start every cycle at its smallest name, so one cycle found from two places is listed once.
      const start = loop.indexOf([...loop].sort()[0]);
      const rotated = [...loop.slice(start), ...loop.slice(0, start)];
      cycles.add([...rotated, rotated[0]].join(" → "));
      return;
    }
    if (done.has(node)) return;
    path.push(node);
    for (const next of graph.get(node) ?? []) visit(next);
    path.pop();
    done.add(node);
  };
  [...graph.keys()].sort().forEach(visit);
  return [...cycles];
}

describe("imports in js/", () => {
  it("form no cycle", () => {
    const graph = importGraph();
    expect(graph.size).toBeGreaterThan(30);
    expect(graph.get(join(ROOT, "app.ts"))).toContain(join(ROOT, "selection.ts"));
    expect(findCycles(graph)).toEqual([]);
  });

  it("would name a cycle", () => {
    const graph = new Map([
      ["b.ts", ["c.ts"]],
      ["a.ts", ["b.ts"]],
      ["c.ts", ["a.ts", "d.ts"]],
      ["d.ts", []],
    ]);
    expect(findCycles(graph)).toEqual(["a.ts → b.ts → c.ts → a.ts"]);
  });
});
