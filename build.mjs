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
