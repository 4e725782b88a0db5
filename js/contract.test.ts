import { describe, expect, it } from "vitest";
import { chunkKey, chunkLength, isResponse, stackInfo, toUint8 } from "./contract";
import { buildFixture, offsetView } from "./test/fixtures";

describe("uint8 decoding", () => {
  it("reads only the DataView's window of a larger buffer", () => {
    const view = offsetView(new Uint8Array([7, 8, 9]), 11);
    expect(view.byteOffset).toBe(11);
    expect(view.buffer.byteLength).toBeGreaterThan(3);
    expect([...toUint8(view)]).toEqual([7, 8, 9]);
  });

  it("accepts a bare ArrayBuffer and typed arrays with an offset", () => {
    expect([...toUint8(new Uint8Array([1, 2]).buffer)]).toEqual([1, 2]);
    const source = new Uint8Array([0, 0, 5, 6]);
    expect([...toUint8(source.subarray(2))]).toEqual([5, 6]);
  });

  it("rejects what is not binary with a clear error", () => {
    expect(() => toUint8("abc" as never)).toThrow(/binary attention data/);
  });
});

describe("meta helpers", () => {
  it("keys chunks as <stack>/<layer>", () => {
    expect(chunkKey("cross", 3)).toBe("cross/3");
  });

  it("finds a stack's token sides, and its chunk size", () => {
    const { meta } = buildFixture({ encoderDecoder: { decoderTokens: ["<s>", "a", "b"] } });
    const cross = stackInfo(meta, "cross")!;
    expect(cross.query.tokens).toEqual(["<s>", "a", "b"]);
    expect(cross.key.tokens).toHaveLength(8);
    expect(chunkLength(cross)).toBe(3 * 3 * 8);
    expect(stackInfo(meta, "nope")).toBeNull();
  });

  it("tells responses from other messages", () => {
    expect(isResponse({ kind: "response", id: 1, error: "x" })).toBe(true);
    expect(isResponse({ kind: "request", id: 1 })).toBe(false);
    expect(isResponse(null)).toBe(false);
  });
});
