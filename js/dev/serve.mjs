// Build the demo page into /tmp/attnwidget-demo and serve it (with any ?data= file from there).
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join } from "node:path";

const out = process.env.DEMO_DIR ?? "/tmp/attnwidget-demo";
mkdirSync(out, { recursive: true });
await build({ entryPoints: ["js/dev/demo.ts"], outfile: join(out, "demo.js"), bundle: true, format: "esm", target: "es2022" });
copyFileSync("js/dev/index.html", join(out, "index.html"));
const types = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".json": "application/json" };
createServer((request, response) => {
  const path = new URL(request.url, "http://x").pathname;
  try {
    const body = readFileSync(join(out, path === "/" ? "index.html" : path));
    response.writeHead(200, { "content-type": types[extname(path) || ".html"] ?? "application/octet-stream" });
    response.end(body);
  } catch {
    response.writeHead(404).end();
  }
}).listen(8765, "127.0.0.1", () => console.log(`http://127.0.0.1:8765/ serving ${out}`));
