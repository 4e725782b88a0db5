// The state an exported page carries (written by src/attnwidget/export.py): the selection and
// meta as they were in Python, and each binary trait (`_thumbs`, `_chunks`, `_qk`) as base64 of zlib streams.

import { headKey, type Traits } from "../contract";

export interface ExportState {
  traits: Record<string, unknown>;
  binary: Record<string, Record<string, string>>;
  compression: "deflate";
}

/** Binary values as the page holds them (base64 of a zlib stream), by trait and key, not inflated yet. */
export type Packed = Record<string, Record<string, string>>;

export function parseState(text: string): ExportState {
  const state = JSON.parse(text) as Partial<ExportState> | null;
  if (!state || typeof state.traits !== "object" || typeof state.binary !== "object") {
    throw new Error("the page's attention data is damaged (no traits or binary data); export it again");
  }
  if (state.compression !== "deflate") {
    throw new Error(`the page stores its data as ${String(state.compression)}, which this viewer cannot read`);
  }
  return state as ExportState;
}

/**
 * The traits the views draw first, inflated: every thumbnail, and the focused head's chunk and record. The rest
 * stays packed until a view asks for it (js/standalone/page-model.ts): at 4096 tokens a head inflates from a few
 * hundred kB to 16 MiB, and inflating all a page holds took seconds before the first paint.
 */
export async function decodeTraits(state: ExportState): Promise<{ traits: Traits; packed: Packed }> {
  if (typeof DecompressionStream !== "function") {
    throw new Error(
      "this browser cannot decompress the attention (no DecompressionStream); " +
        "open the page in a current Chrome, Edge, Firefox or Safari",
    );
  }
  const traits: Record<string, unknown> = { ...state.traits };
  const packed: Packed = {};
  const { stack, layer, head } = state.traits as Partial<Traits>;
  const focused = headKey(String(stack), Number(layer), Number(head));
  for (const [trait, values] of Object.entries(state.binary)) {
    const first = trait === "_thumbs" ? values : focused in values ? { [focused]: values[focused] } : {};
    const entries = Object.entries(first).map(async ([key, text]) => [key, await unpack(text)] as const);
    traits[trait] = Object.fromEntries(await Promise.all(entries));
    packed[trait] = Object.fromEntries(Object.entries(values).filter(([key]) => !(key in first)));
  }
  return { traits: traits as unknown as Traits, packed };
}

/** One binary value of the page, inflated. */
export async function unpack(text: string): Promise<Uint8Array> {
  const stream = new Response(fromBase64(text)).body!.pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
