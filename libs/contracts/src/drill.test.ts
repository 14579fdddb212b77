import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { drillCommandSchema, drillEventSchema } from "./drill.js";
import { parsePayload } from "./parse-payload.js";
import { drillConsumerName, subjects } from "./subjects.js";

describe("drill command payload", () => {
  const rows: [name: string, body: string, expected: object | RegExp][] = [
    ["an empty body drills every chain", "", {}],
    ["one domain, with a request id", '{"domain":"win 11","requestId":"r1"}', { domain: "win 11", requestId: "r1" }],
    ["not JSON", "{not json", /^payload is not valid JSON/],
    ["an unknown field", '{"domain":"a","level":"full"}', /invalid payload: .*level/],
    ["a domain with a slash", '{"domain":"../etc"}', /invalid payload: domain: .*'\/'/],
  ];
  for (const [name, body, expected] of rows)
    it(name, () => {
      const r = parsePayload(drillCommandSchema, body);
      if (expected instanceof RegExp) assert.match(r.ok ? "" : r.reason, expected);
      else assert.deepEqual(r.ok ? r.value : r.reason, expected);
    });
});

describe("drill subjects and events", () => {
  it("spells the command, its consumer and the events per host", () => {
    assert.equal(subjects.cmd.drill("hv1"), "vmbs.cmd.drill.hv1");
    assert.equal(subjects.cmd.drillAnyHost, "vmbs.cmd.drill.*");
    assert.equal(drillConsumerName("hv1"), "drill-hv1");
    assert.equal(subjects.evt.drill("hv1", "failed"), "vmbs.evt.drill.hv1.failed");
  });
  it("a failed drill names the checkpoint and the file", () => {
    const fault = { checkpoint: "virtnbdbackup.2", file: "vda.inc.virtnbdbackup.2.data", reason: "vda.inc.virtnbdbackup.2.data does not match its recorded sha256" };
    const event = drillEventSchema.parse({
      type: "failed", host: "hv1", runId: "r", at: "2026-12-01T00:00:00.000Z",
      chains: [{ domain: "db", set: "db", ok: false, checkpoint: "virtnbdbackup.2", checkpoints: 3, verifiedFiles: 2, unverifiedFiles: [], images: [{ disk: "vda", virtualSize: 1024 }], faults: [fault], durationMs: 5 }],
      failure: { domain: "db", set: "db", ...fault },
      reason: `db: virtnbdbackup.2: ${fault.reason}`,
    });
    assert.deepEqual([event.failure?.checkpoint, event.failure?.file], ["virtnbdbackup.2", "vda.inc.virtnbdbackup.2.data"]);
    assert.equal(drillEventSchema.safeParse({ ...event, type: "progress" }).success, false);
  });
});
