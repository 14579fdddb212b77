import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { backupCommandSchema } from "./backup.js";
import { parsePayload } from "./parse-payload.js";
import { eventMessageId, normalizeHostToken, subjects } from "./subjects.js";

describe("subjects", () => {
  it("builds command and event subjects with the verb before the host", () => {
    assert.equal(subjects.cmd.backup("hv1"), "vmbs.cmd.backup.hv1");
    assert.equal(subjects.evt.backup("hv1", "failed"), "vmbs.evt.backup.hv1.failed");
    assert.equal(subjects.evt.backupAll("*"), "vmbs.evt.backup.*.*");
  });
  it("gives an event its Nats-Msg-Id from its subject and a fixed id", () => {
    assert.equal(eventMessageId(subjects.evt.backup("hv1", "completed"), "run-1"), "vmbs.evt.backup.hv1.completed#run-1");
  });
  it("refuses a host id that would break the subject", () => {
    assert.throws(() => subjects.cmd.backup("a.b"), /invalid host id/);
    assert.throws(() => subjects.cmd.backup(">"), /invalid host id/);
  });
  const hostRows: [string, string][] = [["web01.example.com", "web01_example_com"], ["HV-1", "hv-1"], ["", "host"]];
  for (const [hostname, token] of hostRows)
    it(`normalises the hostname ${JSON.stringify(hostname)}`, () => assert.equal(normalizeHostToken(hostname), token));
});

describe("backup command payload", () => {
  const accepted: [string, string, object][] = [
    ["an empty body means every scheduled domain", "", { level: "auto" }],
    ["a name with spaces and accents", '{"domain":"win 11 ü"}', { domain: "win 11 ü", level: "auto" }],
    ["an explicit level", '{"domain":"a","level":"full"}', { domain: "a", level: "full" }],
  ];
  for (const [name, body, value] of accepted)
    it(`accepts ${name}`, () => assert.deepEqual(parsePayload(backupCommandSchema, body), { ok: true, value }));

  const refused: [string, string, RegExp][] = [
    ["malformed JSON", "{", /not valid JSON/],
    ["a JSON array", "[]", /invalid payload/],
    ["a number as domain", '{"domain":1}', /domain must be a string/],
    ["a path", '{"domain":"../../etc"}', /must not contain '\/'/],
    ["dot-dot", '{"domain":".."}', /must not be '\.' or '\.\.'/],
    ["a newline", '{"domain":"a\\nb"}', /control characters/],
    ["a 10 kB name", JSON.stringify({ domain: "x".repeat(10_000) }), /longer than 200 bytes/],
    ["an unknown level", '{"domain":"a","level":"copy"}', /level must be one of auto, full, inc/],
    ["an unknown field", '{"domain":"a","force":true}', /Unrecognized key/],
  ];
  for (const [name, body, reason] of refused)
    it(`refuses ${name} with a reason`, () => {
      const result = parsePayload(backupCommandSchema, body);
      assert.equal(result.ok, false);
      assert.match(result.ok ? "" : result.reason, reason);
    });
});
