// Bundle js/widget.ts into src/attnwidget/static/widget.js (+ widget.css), the files the
// Python package loads. Run by `npm run build`, and by hatch-jupyter-builder on `pip install .`.
import { build } from "esbuild";
import { readFileSync } from "node:fs";

const outfile = "src/attnwidget/static/widget.js";

await build({
  entryPoints: ["js/widget.ts"],
  outfile,
  bundle: true,
  format: "esm",
  target: "es2020",
  minify: true,
  legalComments: "none",
  logLevel: "warning",
});

// Pages with RequireJS (classic Notebook, VS Code) define a global `define`; a bundle that
// called or tested it would register itself as an AMD module instead of exporting.
const code = readFileSync(outfile, "utf8");
const amd = /typeof\s+define\b|(^|[^.\w$])define\s*\(/.exec(code);
if (amd) throw new Error(`${outfile} refers to the AMD loader (${amd[0]}); it must be a plain ES module`);
if (/\bimport\s*\(|\bimport\s*["'{*]|\bfrom\s*["']/.test(code)) {
  throw new Error(`${outfile} imports another module; the widget must load with no network access`);
}
readFileSync("src/attnwidget/static/widget.css", "utf8");

// The viewer of exported pages (src/attnwidget/export.py): the same widget plus an in-page model,
// as a plain script that export.py inlines in a classic <script> element (+ standalone.css).
const standalone = "src/attnwidget/static/standalone.js";
await build({
  entryPoints: ["js/standalone.ts"],
  outfile: standalone,
  bundle: true,
  format: "iife",
  target: "es2020",
  minify: true,
  legalComments: "none",
  logLevel: "warning",
});
// Inside a classic <script> the HTML parser ends the element at "</script" and changes how it
// looks for that end after "<!--" or "<script"; the inlined viewer must contain none of them.
const breaker = /<\/script|<!--|<script/i.exec(readFileSync(standalone, "utf8"));
if (breaker) throw new Error(`${standalone} contains ${breaker[0]}, so it cannot be inlined in an exported page`);
readFileSync("src/attnwidget/static/standalone.css", "utf8");
