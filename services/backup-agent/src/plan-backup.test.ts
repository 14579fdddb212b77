import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ChainFolder } from "@vmbs/chain";
import type { BackupLevel } from "@vmbs/contracts";
import type { DomainState } from "@vmbs/virt";
import { planBackup, type BackupPlan } from "./plan-backup.js";

function folder(files: string[], cpt: string[] | null, extra: Partial<ChainFolder> = {}): ChainFolder {
  return { dir: "/b/vm", exists: files.length > 0 || cpt !== null, files: files.map((path) => ({ path, size: 1, mtimeMs: 0 })), cpt, ...extra };
}
const empty = folder([], null, { exists: false });
const logsOnly = folder(["backup.full.11262026023447.log"], null);
const chain = folder(["vda.full.data", "vda.inc.virtnbdbackup.1.data", "vm.cpt"], ["virtnbdbackup.0", "virtnbdbackup.1"]);
const copy = folder(["vda.copy.data", "vmconfig.copy.xml"], null);
const partial = folder(["vda.full.data", "vda.inc.virtnbdbackup.1.data.partial", "vm.cpt"], ["virtnbdbackup.0", "virtnbdbackup.1"]);

const rows: [string, BackupLevel, ChainFolder, DomainState, BackupPlan | RegExp][] = [
  ["new domain, auto → full", "auto", empty, "running", { kind: "run", level: "full", archiveFirst: false, startPaused: false }],
  ["folder with only logs of failed runs → full in place", "auto", logsOnly, "running", { kind: "run", level: "full", archiveFirst: false, startPaused: false }],
  ["existing chain, auto → inc", "auto", chain, "running", { kind: "run", level: "inc", archiveFirst: false, startPaused: false }],
  ["existing chain, inc → inc", "inc", chain, "paused", { kind: "run", level: "inc", archiveFirst: false, startPaused: false }],
  ["existing chain, full → archive then full", "full", chain, "running", { kind: "run", level: "full", archiveFirst: true, startPaused: false }],
  ["copy-mode folder → archive then full", "auto", copy, "running", { kind: "run", level: "full", archiveFirst: true, startPaused: false }],
  ["shut off, new chain → paused start, never copy", "auto", empty, "shut off", { kind: "run", level: "full", archiveFirst: false, startPaused: true }],
  ["shut off, existing chain → paused start, never an offline inc", "auto", chain, "shut off", { kind: "run", level: "inc", archiveFirst: false, startPaused: true }],
  ["inc without a chain is refused", "inc", empty, "running", /no chain to continue/],
  ["unfinished earlier backup is refused", "auto", partial, "running", /did not finish.*partial/],
  ["unreadable .cpt is refused", "auto", folder(["vda.full.data", "vm.cpt"], null, { cptError: "not JSON" }), "running", /unreadable/],
  ["crashed domain is refused", "auto", chain, "crashed", /domain is crashed/],
  ["pmsuspended domain is refused", "auto", chain, "pmsuspended", /domain is pmsuspended/],
];

describe("planBackup", () => {
  for (const [name, requested, observed, state, expected] of rows)
    it(name, () => {
      const plan = planBackup({ requested, folder: observed, state });
      if (expected instanceof RegExp) {
        assert.equal(plan.kind, "refuse");
        assert.match(plan.kind === "refuse" ? plan.reason : "", expected);
      } else assert.deepEqual(plan, expected);
    });
});
