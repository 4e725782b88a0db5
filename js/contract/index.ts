// The browser half of docs/data-contract.md, mirror of src/attnwidget/wire.py: trait names and
// types, the `meta` JSON, chunk keys, the binary formats and the custom messages. Everything
// that crosses between Python and the browser is named here and nowhere else.

export * from "./traits";
export * from "./messages";
export * from "./binary";
export * from "./query-key";
export * from "./tile";
