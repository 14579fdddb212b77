import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { BackupLevel } from "@vmbs/contracts";
import type { ChainFolder, FileStamps } from "./chain-folder.js";
import type { ChainPlan, ChainSnapshot } from "./chain-snapshot.js";
import {
  archiveBeforeBackup,
  chainEndAfterRestore,
  endChainOnDamagedData,
  folderAtChainEnd,
  keepChainOnFullDisk,
  mirrorArchivesToDelete,
  mirrorCopyFate,
  mirrorKeepAfterArchive,
  needsRotation,
  type FolderFate,
  type MirrorCopyFate,
} from "./chain-end.js";

function folder(files: string[], cpt: string[] | null, extra: Partial<ChainFolder> = {}): ChainFolder {
  return { dir: "/b/vm", exists: true, files: files.map((path) => ({ path, size: 1, mtimeMs: 0 })), cpt, ...extra };
}
const cps = (n: number) => Array.from({ length: n }, (_, i) => `virtnbdbackup.${i}`);
const absent = folder([], null, { exists: false });
const empty = folder([], null);
const logsOnly = folder(["backup.full.11262026023447.log"], null);
const chain3 = folder(["vda.full.data", "vda.inc.virtnbdbackup.1.data", "vda.inc.virtnbdbackup.2.data", "vm.cpt"], cps(3));
const copy = folder(["vda.copy.data", "vmconfig.copy.xml"], null);
const fullNoCpt = folder(["vda.full.data"], null);
const badCpt = folder(["vda.full.data", "vm.cpt"], null, { cptError: "vm.cpt: not a JSON array" });

describe("chain end: the one place that decides whether a chain is archived", () => {
  const beforeBackup: [string, ChainFolder, BackupLevel, boolean][] = [
    ["no folder, auto", absent, "auto", false],
    ["logs of failed runs only, full", logsOnly, "full", false],
    ["a chain, auto continues it", chain3, "auto", false],
    ["a chain, inc continues it", chain3, "inc", false],
    ["a chain, full starts a new one", chain3, "full", true],
    ["a copy backup, auto: set aside for the full", copy, "auto", true],
    ["a full without .cpt, auto: set aside for the full", fullNoCpt, "auto", true],
  ];
  for (const [what, f, level, expected] of beforeBackup) it(`before a backup: ${what}`, () => assert.equal(archiveBeforeBackup(f, level), expected));

  const rotation: [string, ChainFolder, number, boolean, boolean, RegExp][] = [
    ["no folder", absent, 3, false, false, /no chain data/],
    ["forced rotation of logs only", logsOnly, 3, true, false, /no chain data/],
    ["forced", chain3, 30, true, true, /forced/],
    ["at the limit", chain3, 3, false, true, /3 checkpoints, MAX_BACKUPS_PER_CHAIN=3/],
    ["below the limit", chain3, 4, false, false, /3 of 4/],
    ["limit 0 never rotates", chain3, 0, false, false, /never rotate/],
    ["copy backup", copy, 30, false, true, /copy backup/],
    ["unreadable .cpt is the check's business", badCpt, 1, false, false, /left to the chain check/],
    ["missing .cpt is the check's business", fullNoCpt, 1, false, false, /left to the chain check/],
  ];
  for (const [what, f, max, force, rotate, reason] of rotation) {
    it(`rotation: ${what}`, () => {
      const d = needsRotation(f, max, force);
      assert.equal(d.rotate, rotate);
      assert.match(d.reason, reason);
    });
  }

  const atEnd: [string, ChainFolder, boolean, FolderFate][] = [
    ["absent folder", absent, true, "none"],
    ["empty folder", empty, false, "none"],
    ["restorable chain", chain3, true, "archive"],
    ["nothing restorable", logsOnly, false, "delete"],
  ];
  for (const [what, f, restorable, fate] of atEnd) it(`chain check ends a chain: ${what}`, () => assert.equal(folderAtChainEnd(f, restorable), fate));

  const lead: ChainPlan["steps"] = [{ op: "abort-job" }, { op: "kill-qemu-nbd", pidFiles: ["/var/tmp/a.pid"] }, { op: "clean-tmp", paths: ["/var/tmp/a.pid"] }];
  const snapshot = { domain: "vm", folder: chain3 } as ChainSnapshot;
  const fault = { checkpoint: "virtnbdbackup.1", file: "vda.inc.virtnbdbackup.1.data", problem: "truncated" };
  const damaged: [string, ChainPlan, ChainPlan["steps"]][] = [
    ["a plain keep", { kind: "keep", reason: "k", steps: [] }, [{ op: "archive-folder" }, { op: "start-new-chain" }]],
    ["a keep with leftovers keeps their cleanup", { kind: "keep", reason: "k", steps: lead }, [...lead, { op: "archive-folder" }, { op: "start-new-chain" }]],
  ];
  for (const [what, kept, steps] of damaged) {
    it(`damaged data ends a kept chain, archived as is: ${what}`, () => {
      const plan = endChainOnDamagedData(snapshot, kept, fault);
      assert.equal(plan.kind, "new-chain");
      assert.deepEqual(plan.steps, steps);
      assert.match(plan.reason, /virtnbdbackup\.1 of vm is damaged: vda\.inc\.virtnbdbackup\.1\.data: truncated\. The chain in \/b\/vm restores correctly only up to/);
    });
  }

  const space = "free space 0.0 MiB of 24.0 MiB on /b";
  const fullDisk: [string, ChainPlan, Omit<ChainPlan, "reason"> | "unchanged"][] = [
    ["repair in place stands", { kind: "repair", reason: "r", steps: [{ op: "delete-files", files: ["a.partial"] }, { op: "rewrite-cpt", checkpoints: ["virtnbdbackup.0"] }] }, "unchanged"],
    ["keep stands", { kind: "keep", reason: "k", steps: [] }, "unchanged"],
    [
      "archive and new full becomes needs-user, only the leftovers cleaned",
      { kind: "new-chain", reason: "n", steps: [...lead, { op: "delete-checkpoint", name: "virtnbdbackup.1", metadataOnly: false }, { op: "archive-folder" }, { op: "start-new-chain" }] },
      { kind: "needs-user", steps: lead },
    ],
    [
      "an interrupted first backup is still deleted (frees space), its full is not started now",
      { kind: "delete-partial-chain", reason: "d.", steps: [{ op: "delete-checkpoint", name: "virtnbdbackup.0", metadataOnly: false }, { op: "delete-folder" }, { op: "start-new-chain" }] },
      { kind: "delete-partial-chain", steps: [{ op: "delete-checkpoint", name: "virtnbdbackup.0", metadataOnly: false }, { op: "delete-folder" }] },
    ],
  ];
  for (const [what, plan, want] of fullDisk) {
    it(`full backup disk: ${what}`, () => {
      const out = keepChainOnFullDisk(plan, space);
      if (want === "unchanged") return assert.deepEqual(out, plan);
      assert.equal(out.kind, want.kind);
      assert.deepEqual(out.steps, want.steps);
      if (out.kind === "needs-user") assert.match(out.reason, /^backup disk full: free space 0\.0 MiB of 24\.0 MiB on \/b, the chain is kept\. The check would end it \(n\)/);
      else assert.equal(out.reason, `d. On the full disk (${space}) that full waits for the next backup run.`);
    });
  }

  const restore: [string, string[], boolean, ReturnType<typeof chainEndAfterRestore>][] = [
    ["checkpoints and a chain folder", ["virtnbdbackup.0", "virtnbdbackup.1"], true, { deleteCheckpoints: ["virtnbdbackup.1", "virtnbdbackup.0"], archiveFolder: true }],
    ["no chain folder", ["virtnbdbackup.0"], false, { deleteCheckpoints: ["virtnbdbackup.0"], archiveFolder: false }],
    ["nothing of a chain", [], false, { deleteCheckpoints: [], archiveFolder: false }],
  ];
  for (const [what, checkpoints, exists, want] of restore)
    it(`in-place restore ends the chain: ${what}`, () => assert.deepEqual(chainEndAfterRestore(checkpoints, exists), want));

  const stamps = (entries: [string, number, number][]): FileStamps => new Map(entries.map(([p, size, mtimeS]) => [p, { size, mtimeS }]));
  const local = stamps([["vda.full.data", 10, 100], ["vda.inc.virtnbdbackup.1.data", 5, 200], ["web.cpt", 3, 201]]);
  const copyFate: [string, FileStamps | undefined, FileStamps | undefined, MirrorCopyFate][] = [
    ["no copy yet", local, undefined, "continue"],
    ["an empty copy", local, stamps([]), "continue"],
    ["the same chain, behind", local, stamps([["vda.full.data", 10, 100]]), "continue"],
    ["only a non-data file differs", local, stamps([["vda.full.data", 10, 100], ["web.cpt", 1, 50]]), "continue"],
    ["a data file with another mtime", local, stamps([["vda.full.data", 10, 90]]), "archive"],
    ["a data file the local chain lacks", local, stamps([["vda.full.data", 10, 100], ["vda.inc.virtnbdbackup.2.data", 5, 300]]), "archive"],
    ["the local chain is gone", undefined, stamps([["vda.full.data", 10, 100]]), "archive-only"],
    ["the local chain is empty", stamps([]), stamps([["vda.full.data", 10, 100]]), "archive-only"],
    ["neither side holds files", stamps([]), undefined, "nothing"],
  ];
  for (const [what, l, m, fate] of copyFate) it(`mirror copy: ${what}`, () => assert.equal(mirrorCopyFate(l, m), fate));

  const at = (day: string) => `web.2026-01-${day}+00:00:00.0000000000`;
  const mirrorRoot = ["web", at("05"), at("04"), at("03"), at("02"), `${at("01")}-keep`, "web.foreign-files", "other"];
  const mirrorRetention: [string, string[], string[], number, string[]][] = [
    ["keeps the newest two, deletes older archives", mirrorRoot, [], 2, [at("03"), at("02")]],
    ["keep 0 keeps every archive", mirrorRoot, [], 0, []],
    ["fewer archives than keep", [at("05"), "web"], [], 2, []],
    ["an active chain named like an archive is never deleted", mirrorRoot, [at("02")], 2, [at("03")]],
    ["an active look-alike counts among the newest kept", mirrorRoot, [at("05")], 2, [at("03"), at("02")]],
    ["archives of another domain are not candidates", ["db.2026-01-01+00:00:00.0000000000", at("05")], [], 1, []],
  ];
  for (const [what, names, active, keep, want] of mirrorRetention)
    it(`mirror retention: ${what}`, () => assert.deepEqual(mirrorArchivesToDelete("web", names, active, keep), want));

  const keepAfterArchive: [string, MirrorCopyFate, number, number | undefined][] = [
    ["the local chain rotated: the domain's count applies", "archive", 3, 3],
    ["the local chain rotated, keep 0: every archive stays", "archive", 0, 0],
    ["the local chain is gone: its copies are never pruned with it", "archive-only", 3, 0],
    ["the same chain: no archive, so no mirror retention", "continue", 3, undefined],
    ["nothing on either side: no mirror retention", "nothing", 3, undefined],
  ];
  for (const [what, fate, keep, want] of keepAfterArchive)
    it(`mirror retention after the archive: ${what}`, () => assert.equal(mirrorKeepAfterArchive(fate, keep), want));
});
