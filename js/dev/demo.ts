// A page to look at the widget without Jupyter: `node js/dev/serve.mjs`, then open
// http://127.0.0.1:8765/?view=head&theme=dark. Data: ?data=<json with meta, base64 chunks by head key and thumbs by layer key>,
// else the test fixture. Not part of the bundle.

import type { Binary, Meta, Traits, ViewName, Theme } from "../contract";
import { FakeModel } from "../test/fake-model";
import { buildFixture } from "../test/fixtures";
import widget from "../widget";

const params = new URLSearchParams(location.search);

async function traits(): Promise<Traits> {
  const url = params.get("data");
  const base = buildFixture(
    params.has("encdec") ? { encoderDecoder: { decoderTokens: ["<pad>", "Le", "chat", "est", "assis", "</s>"] } } : {},
  ).traits;
  if (!url) return base;
  const data: { meta: Meta; chunks: Record<string, string>; thumbs: Record<string, string> } = await (await fetch(url)).json();
  const binary = (values: Record<string, string>) => {
    const decoded: Record<string, Binary> = {};
    for (const [key, b64] of Object.entries(values)) decoded[key] = new DataView(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer);
    return decoded;
  };
  const stack = data.meta.stacks[0];
  const heads = [...Array(stack.heads).keys()];
  return { ...base, meta: data.meta, _chunks: binary(data.chunks), _thumbs: binary(data.thumbs), stack: stack.name, heads };
}

const t = await traits();
const number = (name: string) => (params.has(name) ? Number(params.get(name)) : undefined);
const model = new FakeModel({
  ...t,
  view: (params.get("view") as ViewName) ?? "head",
  theme: (params.get("theme") as Theme) ?? "light",
  layer: number("layer") ?? t.layer,
  head: number("head") ?? t.head,
  token: number("token") ?? null,
  stack: params.get("stack") ?? t.stack,
  pair_filter: (params.get("pair_filter") as Traits["pair_filter"]) ?? "all",
  heads: params.has("heads") ? params.get("heads")!.split(",").map(Number) : t.heads,
});
if (params.get("theme") === "dark") document.body.style.background = "#111315";
widget.initialize({ model });
widget.render({ model, el: document.getElementById("app")! });
(window as unknown as { model: FakeModel }).model = model;
