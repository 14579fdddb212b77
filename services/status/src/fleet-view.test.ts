import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { fleetStatusSchema, type FleetStatus } from "@vmbs/contracts";
import { domainRecordOf, emptyFleet, hostRecordOf, type FleetRecords } from "./fleet-records.js";
import { fleetStatus, fleetStatusJson } from "./fleet-view.js";
import type { FleetPolicy } from "./fleet-policy.js";

const now = new Date("2026-12-08T12:00:00Z");

function fleetOf(hosts: number, domains: number): FleetRecords {
  const fleet = emptyFleet();
  for (let h = 0; h < hosts; h++) {
    const host = hostRecordOf(fleet, `hv${h}`);
    host.lastSeen = now.toISOString();
    host.domains = Array.from({ length: domains }, (_, d) => ({ name: `vm-${d}`, state: "running", scheduled: true }));
    for (let d = 0; d < domains; d++) domainRecordOf(fleet, host.host, `vm-${d}`).firstSeenScheduled = now.toISOString();
  }
  return fleet;
}

describe("fleetStatus: a reply cut to fit one message", () => {
  let asked = 0;
  const policy: FleetPolicy = { rpoSeconds: 3600, silentAfterMs: 65_000, nextRun: () => (asked++, new Date("2026-12-09T03:00:00Z")) };

  it("parts within the size, each host once and in order, `next` on every part but the last", () => {
    const fleet = fleetOf(7, 3);
    const whole = fleetStatus(fleet, now, policy);
    assert.equal(whole.next, undefined);
    const maxBytes = Math.ceil(JSON.stringify(whole).length / 3);
    const parts: FleetStatus[] = [];
    for (let after: string | undefined; ; ) {
      const text = fleetStatusJson(fleet, now, policy, after ? { after } : {}, maxBytes);
      assert.ok(Buffer.byteLength(text) <= maxBytes, `part ${parts.length + 1} fits in ${maxBytes} bytes`);
      const part = fleetStatusSchema.parse(JSON.parse(text));
      parts.push(part);
      if (!part.next) break;
      assert.equal(part.next, part.hosts.at(-1)!.host);
      after = part.next;
    }
    assert.ok(parts.length >= 3, `${parts.length} parts`);
    assert.deepEqual(parts.flatMap((p) => p.hosts), whole.hosts);
  });

  it("a host bigger than the size still comes, alone; the schedule is asked once per reply", () => {
    const fleet = fleetOf(3, 40);
    asked = 0;
    const part = fleetStatusSchema.parse(JSON.parse(fleetStatusJson(fleet, now, policy, {}, 100)));
    assert.deepEqual([part.hosts.map((h) => h.host), part.next], [["hv0"], "hv0"]);
    assert.equal(asked, 1);
    assert.deepEqual(fleetStatus(fleet, now, policy, { after: "hv1" }).hosts.map((h) => h.host), ["hv2"]);
  });
});
