import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { isRunComplete, isScheduledRun, summarizeRun, type DomainOutcome } from "./run-digest.js";

const ok = (domain: string, bytesWritten = 10, durationMs = 100): DomainOutcome => ({ domain, outcome: "completed", bytesWritten, durationMs });
const bad = (domain: string): DomainOutcome => ({ domain, outcome: "failed", bytesWritten: 0, durationMs: 5, reason: "x" });

describe("run digest", () => {
  const rows: [string[], DomainOutcome[], boolean][] = [
    [["a", "b"], [ok("a")], false],
    [["a", "b"], [ok("a"), bad("b")], true],
    [["a"], [ok("a"), ok("extra")], true],
    [[], [], true],
  ];
  for (const [expected, outcomes, want] of rows)
    it(`expecting ${expected.join(",") || "nothing"} with ${outcomes.map((o) => o.domain).join(",") || "nothing"}: ${want ? "complete" : "running"}`, () =>
      assert.equal(isRunComplete(expected, outcomes), want));
  it("counts, sums and sorts by domain", () => {
    const d = summarizeRun("hv1", "schedule:s", [ok("b", 5, 10), bad("c"), ok("a", 7, 20)], [{ reason: "r" }], "t");
    assert.deepEqual([d.succeeded, d.failed, d.bytesWritten, d.durationMs], [2, 1, 12, 35]);
    assert.deepEqual(d.domains.map((x) => x.domain), ["a", "b", "c"]);
  });
  it("only the scheduler's runs get a digest", () => {
    assert.equal(isScheduledRun("schedule:2026-12-01T03:00:00.000Z"), true);
    assert.equal(isScheduledRun("manual-1"), false);
    assert.equal(isScheduledRun(undefined), false);
  });
});
