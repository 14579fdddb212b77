import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { HostInventory } from "@vmbs/contracts";
import { decideAlarms, domainKey } from "./stale-alarms.js";

const hour = 3_600_000;
const now = Date.parse("2026-12-01T12:00:00Z");
const inv = (host: string, domains: [string, boolean][]): HostInventory => ({
  host,
  hostname: host,
  agentVersion: "t",
  heartbeatAt: "2026-12-01T11:59:50Z",
  domains: domains.map(([name, scheduled]) => ({ name, state: "running", scheduled })),
});

describe("decideAlarms", () => {
  const memory = {
    heartbeats: new Map([["hv1", "2026-12-01T11:59:50Z"], ["dead", "2026-11-30T08:00:00Z"]]),
    completed: new Map([[domainKey("hv1", "old"), "2026-11-30T03:00:00Z"], [domainKey("hv1", "fresh"), "2026-12-01T03:00:00Z"]]),
    firstSeen: new Map([[domainKey("hv1", "new"), "2026-12-01T11:00:00Z"], [domainKey("hv1", "never"), "2026-11-29T00:00:00Z"], [domainKey("hv1", "ignored"), "2026-11-01T00:00:00Z"]]),
  };
  const { stale, silent } = decideAlarms(now, 24 * hour, [inv("hv1", [["old", true], ["fresh", true], ["new", true], ["never", true], ["ignored", false]])], memory);
  it("a domain whose last backup is older than the age is stale, with that time", () =>
    assert.deepEqual(stale.find((s) => s.domain === "old"), { host: "hv1", domain: "old", lastCompletedAt: "2026-11-30T03:00:00Z", since: "2026-11-30T03:00:00Z" }));
  it("a domain never backed up counts from its first sighting", () => assert.deepEqual(stale.find((s) => s.domain === "never"), { host: "hv1", domain: "never", since: "2026-11-29T00:00:00Z" }));
  it("recent, newly seen and unscheduled domains are not stale", () => assert.deepEqual(stale.map((s) => s.domain).sort(), ["never", "old"]));
  it("a host seen before without an inventory now is silent", () => assert.deepEqual(silent, [{ host: "dead", lastHeartbeatAt: "2026-11-30T08:00:00Z" }]));
});
