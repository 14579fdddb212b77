import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { fleetStatusSchema, type FleetStatus } from "@vmbs/contracts";
import { domainRecordOf, emptyFleet, hostRecordOf, type FleetRecords } from "./fleet-records.js";
import { fleetStatus } from "./fleet-view.js";
import { createFleetViewCache } from "./fleet-view-cache.js";
import { describeAge, describeAgeChangesAt, type FleetPolicy } from "./fleet-policy.js";

const now = new Date("2026-12-08T12:00:00Z");
const iso = (ms: number): string => new Date(ms).toISOString();

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

describe("fleet view cache: a reply cut to fit one message", () => {
  let asked = 0;
  const policy: FleetPolicy = { rpoSeconds: 3600, silentAfterMs: 65_000, nextRun: () => (asked++, new Date("2026-12-09T03:00:00Z")) };

  it("parts within the size, each host once and in order, `next` on every part but the last", () => {
    const fleet = fleetOf(7, 3);
    const whole = fleetStatus(fleet, now, policy);
    const views = createFleetViewCache(fleet, policy);
    assert.equal(views.reply(now).toString(), JSON.stringify(whole));
    const maxBytes = Math.ceil(JSON.stringify(whole).length / 3);
    const parts: FleetStatus[] = [];
    for (let after: string | undefined; ; ) {
      const text = views.reply(now, after ? { after } : {}, maxBytes).toString();
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

  it("a host bigger than the size still comes, alone; the schedule is asked once per reply; filters as fleetStatus", () => {
    const fleet = fleetOf(3, 40);
    const views = createFleetViewCache(fleet, policy);
    asked = 0;
    const part = fleetStatusSchema.parse(JSON.parse(views.reply(now, {}, 100).toString()));
    assert.deepEqual([part.hosts.map((h) => h.host), part.next], [["hv0"], "hv0"]);
    assert.equal(asked, 1);
    for (const filter of [{ after: "hv1" }, { host: "hv1" }, { domain: "vm-7" }, { host: "hv2", domain: "vm-39" }, { domain: "none" }]) {
      assert.equal(views.reply(now, filter).toString(), JSON.stringify(fleetStatus(fleet, now, policy, filter)), JSON.stringify(filter));
    }
  });
});

describe("fleet view cache: the same text as a view made afresh", () => {
  // A clock the test moves; the schedule's next slot follows it (every full hour).
  let clock = now.getTime();
  const policy: FleetPolicy = { rpoSeconds: 60, silentAfterMs: 65_000, nextRun: () => new Date(Math.floor(clock / 3_600_000 + 1) * 3_600_000) };
  const t0 = now.getTime();
  const backup = (at: number) => ({ at: iso(at), level: "inc" as const, checkpoint: "virtnbdbackup.1", bytesWritten: 1024, durationMs: 2_000 });

  /** Hosts and domains whose status turns by the clock at known instants (returned), besides the minute ticks. */
  function clockworkFleet(): { fleet: FleetRecords; turns: number[] } {
    const fleet = emptyFleet();
    const hv0 = hostRecordOf(fleet, "hv0");
    hv0.lastSeen = iso(t0);
    hv0.domains = ["fresh", "never", "idle", "old", "failing"].map((name) => ({ name, state: "running", scheduled: name !== "idle" }));
    domainRecordOf(fleet, "hv0", "fresh").lastBackup = backup(t0 - 30_000);
    domainRecordOf(fleet, "hv0", "never").firstSeenScheduled = iso(t0 - 50_000);
    domainRecordOf(fleet, "hv0", "idle").lastBackup = backup(t0 - 86_400_000);
    // 47 h 59 min old: its age reads in days an instant later.
    domainRecordOf(fleet, "hv0", "old").lastBackup = backup(t0 - 48 * 3_600_000 + 60_000);
    const failing = domainRecordOf(fleet, "hv0", "failing");
    failing.lastBackup = backup(t0 - 10_000);
    failing.lastFailure = { at: iso(t0 - 5_000), reason: "virtnbdbackup exited 1" };
    // Silent 5 s from now; never heart-beat (known from events only); silent for long.
    const hv1 = hostRecordOf(fleet, "hv1");
    hv1.lastSeen = iso(t0 - 60_000);
    hv1.domains = [{ name: "db", state: "shut off", scheduled: true }];
    domainRecordOf(fleet, "hv1", "db").lastBackup = backup(t0 - 59_000);
    domainRecordOf(fleet, "hv2", "stray").lastBackup = backup(t0 - 3_600_000);
    hostRecordOf(fleet, "hv3").lastSeen = iso(t0 - 7 * 86_400_000);
    const turns = [t0 + 30_000 + 1, t0 + 10_000 + 1, t0 + 60_000 + 1, t0 - 60_000 + 65_000 + 1, t0 + 1_000 + 1, t0 + 3_600_000];
    return { fleet, turns };
  }

  it("at every instant: across silences, RPO verdicts, ticking ages, the next slot, and a clock set back", () => {
    const { fleet, turns } = clockworkFleet();
    const views = createFleetViewCache(fleet, policy);
    const instants = new Set<number>();
    for (let t = t0 - 1_000; t < t0 + 200_000; t += 137) instants.add(t);
    for (const turn of turns) for (const d of [-1, 0, 1]) instants.add(turn + d);
    for (let m = 0; m <= 180; m++) instants.add(t0 + m * 60_000 - 500);
    const sorted = [...instants].sort((a, b) => a - b);
    let compared = 0;
    for (const t of [...sorted, t0 - 1_000, t0 + 3_600_000 + 5]) {
      clock = t;
      const at = new Date(t);
      assert.equal(views.reply(at).toString(), JSON.stringify(fleetStatus(fleet, at, policy)), `at ${iso(t)}`);
      compared++;
    }
    assert.ok(compared > 1_500);
    // The fleet did turn over those instants (else the comparison above proves little).
    const before = fleetStatus(fleet, new Date(t0), policy);
    const afterwards = fleetStatus(fleet, new Date(t0 + 200_000), policy);
    assert.deepEqual([before.hosts[1]!.alive, afterwards.hosts[1]!.alive], [true, false]);
    assert.deepEqual([before.hosts[0]!.domains[1]!.rpo.breached, afterwards.hosts[0]!.domains[1]!.rpo.breached], [false, true]);
  });

  it("a changed record shows once its host is invalidated, and not before: replies are made from the cache", () => {
    clock = t0;
    const { fleet } = clockworkFleet();
    const views = createFleetViewCache(fleet, policy);
    const at = new Date(t0 + 1_000);
    const first = views.reply(at).toString();
    domainRecordOf(fleet, "hv1", "db").chainLength = 7;
    assert.equal(views.reply(at).toString(), first, "hv1 was not invalidated: its text is the one made before");
    views.invalidate("hv1");
    const fresh = JSON.stringify(fleetStatus(fleet, at, policy));
    assert.notEqual(fresh, first);
    assert.equal(views.reply(at).toString(), fresh);
  });
});

describe("describeAgeChangesAt", () => {
  it("is the first age at which describeAge reads differently", () => {
    for (const ms of [0, 499, 500, 59_499, 59_500, 61_000, 3_599_400, 7_200_000, 48 * 3_600_000 - 30_000, 48 * 3_600_000 + 10, 9 * 86_400_000 + 1_234]) {
      const next = describeAgeChangesAt(ms);
      assert.ok(next > ms, `${ms}: ${next}`);
      assert.equal(describeAge(next - 1), describeAge(ms), `${ms}: the same until ${next}`);
      assert.notEqual(describeAge(next), describeAge(ms), `${ms}: changed at ${next}`);
    }
  });
});
