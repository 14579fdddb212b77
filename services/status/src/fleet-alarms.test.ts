import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { domainRecordOf, emptyFleet, hostRecordOf, observeInventory, type FleetRecords } from "./fleet-records.js";
import { decideFleetAlarms } from "./fleet-alarms.js";
import { fleetStatus } from "./fleet-view.js";
import { type FleetPolicy, uniformFleetPolicy } from "./fleet-policy.js";

const policy: FleetPolicy = uniformFleetPolicy({ rpoSeconds: 3600, silentAfterMs: 65_000, nextRun: () => new Date("2026-12-08T00:00:00.000Z") });
const t = (iso: string): Date => new Date(`2026-12-07T${iso}Z`);

function fleetWith(heartbeatAt: string, lastBackupAt?: string): FleetRecords {
  const fleet = emptyFleet();
  observeInventory(fleet, { host: "hv1", hostname: "hv1", agentVersion: "0.1.0", heartbeatAt, domains: [{ name: "web", state: "running", scheduled: true }, { name: "tmp", state: "running", scheduled: false }] }, "2026-12-07T08:00:00.000Z");
  if (lastBackupAt) domainRecordOf(fleet, "hv1", "web").lastBackup = { at: lastBackupAt, level: "inc", checkpoint: "virtnbdbackup.1", bytesWritten: 1, durationMs: 1 };
  return fleet;
}

describe("decideFleetAlarms: one alarm per episode", () => {
  it("a live host with a fresh backup: no alarm", () => {
    assert.deepEqual(decideFleetAlarms(fleetWith("2026-12-07T10:00:00.000Z", "2026-12-07T09:30:00.000Z"), t("10:00:30"), policy).alarms, []);
  });

  it("silent after two missed beats, once; back when it beats again, once", () => {
    const fleet = fleetWith("2026-12-07T10:00:00.000Z", "2026-12-07T09:30:00.000Z");
    assert.deepEqual(decideFleetAlarms(fleet, t("10:01:00"), policy).alarms, []);
    const first = decideFleetAlarms(fleet, t("10:01:10"), policy);
    assert.deepEqual(first.alarms.map((a) => [a.type, a.host]), [["silent", "hv1"]]);
    assert.deepEqual(first.hosts.map((h) => h.silentSince), ["2026-12-07T10:00:00.000Z"]);
    assert.deepEqual(decideFleetAlarms(fleet, t("10:05:00"), policy).alarms, [], "the same silence is not raised twice");
    hostRecordOf(fleet, "hv1").lastSeen = "2026-12-07T10:06:00.000Z";
    const back = decideFleetAlarms(fleet, t("10:06:05"), policy);
    assert.deepEqual(back.alarms.map((a) => a.type), ["back"]);
    assert.equal(hostRecordOf(fleet, "hv1").silentSince, null);
  });

  it("stale once per episode for a scheduled domain; an unscheduled one never; a silent host's domains not", () => {
    const fleet = fleetWith("2026-12-07T10:00:00.000Z", "2026-12-07T08:59:00.000Z");
    const first = decideFleetAlarms(fleet, t("10:00:10"), policy);
    assert.deepEqual(first.alarms.map((a) => a.type === "stale" && [a.domain, a.since]), [["web", "2026-12-07T08:59:00.000Z"]]);
    assert.deepEqual(decideFleetAlarms(fleet, t("10:00:20"), policy).alarms, []);
    // A new backup, overdue again later: a new episode.
    domainRecordOf(fleet, "hv1", "web").lastBackup!.at = "2026-12-07T09:10:00.000Z";
    hostRecordOf(fleet, "hv1").lastSeen = "2026-12-07T10:10:00.000Z";
    assert.deepEqual(decideFleetAlarms(fleet, t("10:10:30"), policy).alarms.map((a) => a.type), ["stale"]);
    // Silent host: the silence only.
    assert.deepEqual(decideFleetAlarms(fleet, t("12:00:00"), policy).alarms.map((a) => a.type), ["silent"]);
  });

  it("a domain never backed up is overdue an RPO after it was first seen scheduled", () => {
    const fleet = fleetWith("2026-12-07T08:59:30.000Z");
    assert.deepEqual(decideFleetAlarms(fleet, t("08:59:50"), policy).alarms, []);
    hostRecordOf(fleet, "hv1").lastSeen = "2026-12-07T09:01:00.000Z";
    const a = decideFleetAlarms(fleet, t("09:01:00"), policy).alarms;
    assert.equal(a.length, 1);
    assert.match(a[0]!.reason, /never backed up since it was first seen scheduled at 2026-12-07T08:00:00.000Z/);
  });
});

describe("fleetStatus: the reply", () => {
  it("lists hosts and domains with verdicts and what needs attention", () => {
    const fleet = fleetWith("2026-12-07T10:00:00.000Z", "2026-12-07T08:00:00.000Z");
    domainRecordOf(fleet, "hv1", "web").lastFailure = { at: "2026-12-07T09:00:00.000Z", reason: "engine died" };
    const s = fleetStatus(fleet, t("10:00:30"), policy);
    assert.equal(s.hosts.length, 1);
    const [web, tmp] = [s.hosts[0]!.domains.find((d) => d.domain === "web")!, s.hosts[0]!.domains.find((d) => d.domain === "tmp")!];
    assert.equal(s.hosts[0]!.alive, true);
    assert.deepEqual(s.hosts[0]!.versions, { vmbs: "0.1.0" });
    assert.deepEqual(web.rpo, { limitSeconds: 3600, breached: true });
    assert.equal(web.nextRun, "2026-12-08T00:00:00.000Z");
    assert.deepEqual(web.attention, ["no good backup for 2 h (RPO 1 h)", "last backup failed: engine died"]);
    assert.deepEqual([tmp.scheduled, tmp.nextRun, tmp.rpo.breached, tmp.attention], [false, null, false, []]);
  });

  it("filters by host and domain; a silent host's domains say so", () => {
    const fleet = fleetWith("2026-12-07T10:00:00.000Z", "2026-12-07T09:59:00.000Z");
    assert.deepEqual(fleetStatus(fleet, t("10:00:30"), policy, { host: "hv2" }).hosts, []);
    const one = fleetStatus(fleet, t("10:05:00"), policy, { domain: "web" });
    assert.deepEqual(one.hosts.map((h) => [h.host, h.alive, h.domains.map((d) => d.domain)]), [["hv1", false, ["web"]]]);
    assert.deepEqual(one.hosts[0]!.domains[0]!.attention, ["host silent since 2026-12-07T10:00:00.000Z"]);
  });
});
