import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ContractEvent } from "@vmbs/contracts";
import { domainRecordOf, emptyFleet, RUNS_KEPT } from "./fleet-records.js";
import { foldEvent } from "./fold-event.js";

const ev = (e: Record<string, unknown>): ContractEvent => ({ host: "hv1", at: "2026-12-07T10:00:00.000Z", ...e }) as unknown as ContractEvent;
const completed = (checkpoint: string, extra: Record<string, unknown> = {}) =>
  ev({ type: "completed", domain: "web", runId: "r", level: checkpoint.endsWith(".0") ? "full" : "inc", checkpoint, bytesWritten: 100, durationMs: 2000, folder: "web", ...extra });

describe("foldEvent: one event into the records of the domains it speaks of", () => {
  const cases: Array<{ name: string; events: Array<[string, ContractEvent]>; expect: (r: ReturnType<typeof domainRecordOf>) => void }> = [
    {
      name: "a completed backup: last backup, chain length from its checkpoint, a run counted",
      events: [["backup", completed("virtnbdbackup.4")]],
      expect: (r) => {
        assert.equal(r.lastBackup?.checkpoint, "virtnbdbackup.4");
        assert.equal(r.chainLength, 5);
        assert.deepEqual(r.runCounts, { "inc/completed": 1 });
        assert.equal(r.bytesTotal, 100);
      },
    },
    {
      name: "a full that archived the old chain: the archive is counted, the chain starts again",
      events: [["backup", completed("virtnbdbackup.0", { archivedTo: "web.2026-12-06" })]],
      expect: (r) => {
        assert.deepEqual(r.archives, ["web.2026-12-06"]);
        assert.equal(r.chainLength, 1);
      },
    },
    {
      name: "a failed run is the last failure and a run without level; a refused one (flood) is neither",
      events: [
        ["backup", ev({ type: "failed", domain: "web", runId: "r2", reason: "engine died", bytesWritten: 0, durationMs: 5 })],
        ["backup", ev({ type: "failed", domain: "web", runId: "r3", reason: "flood", refused: true, bytesWritten: 0, durationMs: 0, at: "2026-12-07T11:00:00.000Z" })],
      ],
      expect: (r) => {
        assert.deepEqual(r.lastFailure, { at: "2026-12-07T10:00:00.000Z", reason: "engine died" });
        assert.deepEqual(r.runCounts, { "none/failed": 1 });
      },
    },
    {
      name: "chain archived then the archive pruned: chain 0, no archive left",
      events: [
        ["backup", completed("virtnbdbackup.2")],
        ["chain", ev({ type: "archived", domain: "web", trigger: "rotation", folders: ["web.2026-12-07"], reason: "rotation" })],
        ["chain", ev({ type: "pruned", domain: "web", trigger: "retention", folders: ["web.2026-12-07"], reason: "retention" })],
      ],
      expect: (r) => {
        assert.equal(r.chainLength, 0);
        assert.deepEqual(r.archives, []);
      },
    },
    {
      name: "a chain asking for a person stays on record until a backup completes",
      events: [["chain", ev({ type: "attention", domain: "web", trigger: "startup", reason: "bitmaps lost" })]],
      expect: (r) => assert.deepEqual(r.chainAttention, { at: "2026-12-07T10:00:00.000Z", reason: "bitmaps lost" }),
    },
    {
      name: "mirror started, failed: failed with the last good sync kept",
      events: [
        ["mirror", ev({ type: "completed", domain: "web", runId: "m1", trigger: "backup", target: "/m", bytesTransferred: 0, durationMs: 0, attempt: 1, at: "2026-12-07T09:00:00.000Z" })],
        ["mirror", ev({ type: "failed", domain: "web", runId: "m2", trigger: "backup", target: "/m", bytesTransferred: 0, durationMs: 0, attempt: 1, reason: "host unreachable" })],
      ],
      expect: (r) => assert.deepEqual(r.mirror, { state: "failed", at: "2026-12-07T10:00:00.000Z", lastSyncAt: "2026-12-07T09:00:00.000Z", target: "/m", reason: "host unreachable" }),
    },
    {
      name: "a dry run's planned chain and mirror events change no record",
      events: [
        ["backup", completed("virtnbdbackup.2", { archivedTo: "web.2026-12-06" })],
        ["mirror", ev({ type: "completed", domain: "web", runId: "m1", trigger: "backup", target: "/m", bytesTransferred: 0, durationMs: 0, attempt: 1, at: "2026-12-07T09:00:00.000Z" })],
        ["chain", ev({ type: "planned", domain: "web", trigger: "command", step: "would delete web.2026-12-06", folders: ["web.2026-12-06"], reason: "dry run" })],
        ["chain", ev({ type: "planned", domain: "web", trigger: "command", step: "would archive web → web.2026-12-07", folders: ["web.2026-12-07"], reason: "dry run" })],
        ["mirror", ev({ type: "planned", domain: "web", runId: "m2", trigger: "command", target: "/m", bytesTransferred: 0, durationMs: 0, attempt: 1, wouldArchiveTo: "web.x", reason: "dry run" })],
      ],
      expect: (r) => {
        assert.deepEqual(r.archives, ["web.2026-12-06"]);
        assert.equal(r.chainLength, 3);
        assert.equal(r.seq, 2, "only the backup and the mirror sync were folded in");
        assert.deepEqual(r.mirror, { state: "in-sync", at: "2026-12-07T09:00:00.000Z", lastSyncAt: "2026-12-07T09:00:00.000Z", target: "/m" });
      },
    },
    {
      name: "a drill of every chain: each domain gets its verdict, the first fault as reason",
      events: [
        [
          "drill",
          ev({
            type: "failed",
            runId: "d1",
            chains: [
              { domain: "web", set: "web", ok: true, checkpoints: 2, verifiedFiles: 2, unverifiedFiles: [], images: [], faults: [], durationMs: 1 },
              { domain: "web", set: "web.2026-12-01", ok: false, checkpoints: 1, verifiedFiles: 0, unverifiedFiles: [], images: [], faults: [{ reason: "checksum mismatch" }], durationMs: 1 },
            ],
          }),
        ],
      ],
      expect: (r) => assert.deepEqual(r.lastDrill, { at: "2026-12-07T10:00:00.000Z", ok: false, sets: 2, reason: "web.2026-12-01: checksum mismatch" }),
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const fleet = emptyFleet();
      c.events.forEach(([service, event], i) => foldEvent(fleet, { service, event, seq: i + 1 }));
      c.expect(domainRecordOf(fleet, "hv1", "web"));
    });
  }

  it("an event delivered again (same or older sequence) changes nothing", () => {
    const fleet = emptyFleet();
    assert.equal(foldEvent(fleet, { service: "backup", event: completed("virtnbdbackup.1"), seq: 7 }).length, 1);
    assert.equal(foldEvent(fleet, { service: "backup", event: completed("virtnbdbackup.1"), seq: 7 }).length, 0);
    assert.deepEqual(domainRecordOf(fleet, "hv1", "web").runCounts, { "inc/completed": 1 });
  });

  it("keeps the newest runs only", () => {
    const fleet = emptyFleet();
    for (let i = 1; i <= RUNS_KEPT + 5; i++) foldEvent(fleet, { service: "backup", event: completed(`virtnbdbackup.${i}`), seq: i });
    const r = domainRecordOf(fleet, "hv1", "web");
    assert.equal(r.runs.length, RUNS_KEPT);
    assert.equal(r.runCounts["inc/completed"], RUNS_KEPT + 5);
  });

  it("events of other services, and events without a domain, change no record", () => {
    const fleet = emptyFleet();
    assert.deepEqual(foldEvent(fleet, { service: "restore", event: ev({ type: "completed", domain: "web" }), seq: 1 }), []);
    assert.deepEqual(foldEvent(fleet, { service: "backup", event: ev({ type: "failed", runId: "x", reason: "bad command", bytesWritten: 0, durationMs: 0 }), seq: 2 }), []);
  });
});
