import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { subjects, type BackupLevel } from "@vmbs/contracts";
import type { OutboxEvent } from "@vmbs/bus";
import { resumeBackup, rotationDone, type ResumeDecision } from "./resume-rules.js";

const at = "2026-12-01T00:00:00.000Z";
const backup = (type: "started" | "completed" | "failed", domain: string): OutboxEvent => ({
  subject: subjects.evt.backup("hv1", type),
  msgId: `${type}-${domain}`,
  payload:
    type === "started"
      ? { type, host: "hv1", domain, runId: "r", at, level: "full", requestedLevel: "full" }
      : type === "completed"
        ? { type, host: "hv1", domain, runId: "r", at, level: "full", checkpoint: "virtnbdbackup.0", bytesWritten: 1, durationMs: 1, folder: domain }
        : { type, host: "hv1", domain, runId: "r", at, bytesWritten: 0, durationMs: 1, reason: "engine failed" },
});
const archived = (domain: string, trigger: string): OutboxEvent => ({
  subject: subjects.evt.chain("hv1", "archived"),
  msgId: `archived-${domain}-${trigger}`,
  payload: { type: "archived", host: "hv1", domain, trigger, reason: "r", at },
});

const rows: [string, OutboxEvent[] | undefined, BackupLevel, ResumeDecision["kind"], BackupLevel?][] = [
  ["first delivery runs as requested", undefined, "full", "run", "full"],
  ["interrupted before anything was announced: run as requested", [], "inc", "run", "inc"],
  ["outcome announced (completed): skip, it is only re-announced", [backup("started", "web"), backup("completed", "web")], "full", "skip"],
  ["outcome announced (failed): skip", [backup("failed", "web")], "auto", "skip"],
  ["another domain's outcome does not count", [backup("completed", "db")], "auto", "run", "auto"],
  ["a full that archived already continues as auto (never a second archive)", [archived("web", "backup"), backup("started", "web")], "full", "run", "auto"],
  ["an archive by rotation before the backup does not change the level", [archived("web", "before-backup")], "full", "run", "full"],
  ["an archive of another domain does not count", [archived("db", "backup")], "full", "run", "full"],
  ["auto after an archive stays auto", [archived("web", "backup")], "auto", "run", "auto"],
];

describe("resumeBackup: what a redelivered backup command does for a domain", () => {
  for (const [name, events, requested, kind, level] of rows)
    it(name, () => {
      const decision = resumeBackup("hv1", events, "web", requested);
      assert.equal(decision.kind, kind, JSON.stringify(decision));
      if (decision.kind === "run") assert.equal(decision.level, level);
    });
});

describe("rotationDone: a redelivered rotate command skips a domain it archived already", () => {
  const rows: [string, OutboxEvent[] | undefined, boolean][] = [
    ["first delivery", undefined, false],
    ["interrupted before archiving", [], false],
    ["archived by this rotate command", [archived("web", "command")], true],
    ["archived by a backup's full, not by the rotation", [archived("web", "backup")], false],
    ["another domain archived", [archived("db", "command")], false],
  ];
  for (const [name, events, skip] of rows) it(name, () => assert.equal(rotationDone("hv1", events, "web"), skip));
});
