import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { errorReplyStatus, VmbsError } from "./vmbs-error.js";

class ExampleRefusedError extends VmbsError {
  constructor(message: string) {
    super("refused", message);
  }
}

describe("VmbsError", () => {
  it("carries its code and its subclass's name", () => {
    const err = new ExampleRefusedError("no");
    assert.ok(err instanceof VmbsError && err instanceof Error);
    assert.equal(err.code, "refused");
    assert.equal(err.name, "ExampleRefusedError");
  });
  it("gives an error reply the status of its code, 500 to anything else", () => {
    assert.equal(errorReplyStatus(new ExampleRefusedError("no")), 400);
    assert.equal(errorReplyStatus(new VmbsError("unavailable", "down")), 503);
    assert.equal(errorReplyStatus(new Error("bug")), 500);
    assert.equal(errorReplyStatus("thrown text"), 500);
  });
});
