// The state an exported page carries (written by src/attnwidget/export.py): the selection and
// meta as they were in Python, and each binary trait (`_thumbs`, `_chunks`, `_qk`) as base64 of zlib streams.

import type { Traits } from "../contract";

export interface ExportState {
  traits: Record<string, unknown>;
  binary: Record<string, Record<string, string>>;
  compression: "deflate";
}

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

/** The traits with every binary value decompressed, ready for the views. */
export async function decodeTraits(state: ExportState): Promise<Traits> {
  if (typeof DecompressionStream !== "function") {
    throw new Error(
      "this browser cannot decompress the attention (no DecompressionStream); " +
        "open the page in a current Chrome, Edge, Firefox or Safari",
    );
  }
  const traits: Record<string, unknown> = { ...state.traits };
  for (const [trait, values] of Object.entries(state.binary)) {
    const entries = await Promise.all(
      Object.entries(values).map(async ([key, text]) => [key, await inflate(fromBase64(text))] as const),
    );
    traits[trait] = Object.fromEntries(entries);
  }
  return traits as unknown as Traits;
}

function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

async function inflate(bytes: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
