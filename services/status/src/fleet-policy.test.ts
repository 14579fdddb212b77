import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseDomainPolicies, type DomainPolicies } from "@vmbs/config";
import { createFleetPolicy } from "./fleet-policy.js";
import { domainRecordOf, emptyFleet, hostRecordOf } from "./fleet-records.js";
import { fleetStatus } from "./fleet-view.js";

/* Issue 18: a domain's VMBS_POLICY_FILE entry gives it its own RPO and schedule in the status. */

describe("fleet policy per domain", () => {
  let file: DomainPolicies = parseDomainPolicies('domains:\n  - match: "db*"\n    rpoMinutes: 90\n    schedule: "15 * * * *"\n', "policy.yaml");
  const policy = createFleetPolicy({ schedule: "0 3 * * *", timeZone: "UTC", rpoMinutes: 1560, policies: { current: () => file } });

  it("takes a domain's RPO and schedule from its entry, the rest from the environment", () => {
    assert.equal(policy.rpoSecondsOf("db1"), 90 * 60);
    assert.equal(policy.rpoSecondsOf("web"), 1560 * 60);
    const next = policy.nextRuns();
    assert.equal(next.of("db1")?.getUTCMinutes(), 15);
    assert.deepEqual([next.of("web")?.getUTCHours(), next.of("web")?.getUTCMinutes()], [3, 0]);
  });

  it("judges each domain by its own RPO in the status", () => {
    const now = new Date("2026-12-08T12:00:00Z");
    const fleet = emptyFleet();
    const host = hostRecordOf(fleet, "hv1");
    host.lastSeen = now.toISOString();
    host.domains = [{ name: "db1", state: "running", scheduled: true }, { name: "web", state: "running", scheduled: true }];
    // Both last backed up two hours ago: past db1's 90 minutes, well within web's 26 hours.
    for (const d of ["db1", "web"]) domainRecordOf(fleet, "hv1", d).lastBackup = { at: "2026-12-08T10:00:00.000Z", level: "inc", checkpoint: "virtnbdbackup.1", bytesWritten: 1, durationMs: 1 };
    const [db1, web] = fleetStatus(fleet, now, policy).hosts[0]!.domains;
    assert.deepEqual([db1!.domain, db1!.rpo], ["db1", { limitSeconds: 5400, breached: true }]);
    assert.match(db1!.attention.join(" "), /RPO 1 h 30 min/);
    assert.deepEqual([web!.domain, web!.rpo], ["web", { limitSeconds: 93600, breached: false }]);
    // The next slots are from the real clock: only their schedules' minute and hour are known here.
    assert.match(db1!.nextRun ?? "", /T\d\d:15:00\.000Z$/);
    assert.match(web!.nextRun ?? "", /T03:00:00\.000Z$/);
  });

  it("a reloaded file changes the answers and the key a cached view holds to", () => {
    const before = policy.nextRuns().key;
    file = parseDomainPolicies('domains:\n  - match: "db*"\n    rpoMinutes: 30\n', "policy.yaml");
    assert.equal(policy.rpoSecondsOf("db1"), 30 * 60);
    assert.notEqual(policy.nextRuns().key, before);
    assert.equal(policy.nextRuns().of("db1")?.getUTCHours(), 3, "back on BACKUP_SCHEDULE");
  });
});
