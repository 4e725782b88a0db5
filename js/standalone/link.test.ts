import { describe, expect, it } from "vitest";
import { fakeModel } from "../test/fixtures";
import { linkSelections } from "./link";

describe("the linked selection of widgets side by side", () => {
  it("follows layer, head and view where the other widget has them, and stays put where it does not", () => {
    const left = fakeModel({ layers: 3, heads: 4, tokens: ["[CLS]", "a", "b", "[SEP]"] });
    const right = fakeModel({ layers: 2, heads: 4, tokens: ["[CLS]", "x", "y", "z", "[SEP]"] });
    linkSelections([left, right]);
    left.set("layer", 1);
    left.set("head", 3);
    left.set("view", "matrix");
    expect([right.get("layer"), right.get("head"), right.get("view")]).toEqual([1, 3, "matrix"]);
    left.set("layer", 2); // the right widget has layers 0 and 1
    expect(right.get("layer")).toBe(1);
    right.set("head", 0); // both ways
    expect(left.get("head")).toBe(0);
    // 4 tokens against 5: an index would name another word, so the token is not followed.
    left.set("token", 2);
    expect(right.get("token")).toBeNull();
  });

  it("follows the token when every side has as many tokens", () => {
    const left = fakeModel({ tokens: ["[CLS]", "a", "b", "[SEP]"] });
    const right = fakeModel({ tokens: ["[CLS]", "x", "y", "[SEP]"] });
    linkSelections([left, right]);
    right.set("token", 2);
    expect(left.get("token")).toBe(2);
  });

  it("stops following once unlinked", () => {
    const left = fakeModel();
    const right = fakeModel();
    const unlink = linkSelections([left, right]);
    unlink();
    left.set("layer", 1);
    expect(right.get("layer")).toBe(0);
  });
});
