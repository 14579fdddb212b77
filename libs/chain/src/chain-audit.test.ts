import { test } from "node:test";
import * as assert from "node:assert/strict";
import type { ChainFolder } from "./chain-folder.js";
import { auditChain, type CheckpointAudit } from "./chain-audit.js";

function folderOf(paths: string[]): ChainFolder {
  return { dir: "/b/vm1", exists: true, files: paths.map((path) => ({ path, size: 1, mtimeMs: 1 })), cpt: null };
}

const ok = (name: string): CheckpointAudit => ({ name, complete: true, missing: [], partials: [] });
const CPT = ["virtnbdbackup.0", "virtnbdbackup.1", "virtnbdbackup.2"];
const TWO_DISKS = ["sda.full.data", "sdb.full.data", "sda.inc.virtnbdbackup.1.data", "sdb.inc.virtnbdbackup.1.data"];

const rows: { name: string; paths: string[]; disks: string[]; checkpoints: CheckpointAudit[]; strays: string[] }[] = [
  {
    name: "complete two-disk chain",
    paths: [...TWO_DISKS, "sda.inc.virtnbdbackup.2.data", "sdb.inc.virtnbdbackup.2.data"],
    disks: ["sda", "sdb"],
    checkpoints: CPT.map(ok),
    strays: [],
  },
  {
    name: "newest checkpoint cut on sdb",
    paths: [...TWO_DISKS, "sda.inc.virtnbdbackup.2.data", "sdb.inc.virtnbdbackup.2.data.partial"],
    disks: ["sda", "sdb"],
    checkpoints: [
      ok("virtnbdbackup.0"),
      ok("virtnbdbackup.1"),
      {
        name: "virtnbdbackup.2",
        complete: false,
        missing: ["sdb.inc.virtnbdbackup.2.data"],
        partials: ["sdb.inc.virtnbdbackup.2.data.partial"],
      },
    ],
    strays: [],
  },
  {
    name: "newest checkpoint without any data (the silent-loss trap)",
    paths: TWO_DISKS,
    disks: ["sda", "sdb"],
    checkpoints: [
      ok("virtnbdbackup.0"),
      ok("virtnbdbackup.1"),
      { name: "virtnbdbackup.2", complete: false, missing: ["sda.inc.virtnbdbackup.2.data", "sdb.inc.virtnbdbackup.2.data"], partials: [] },
    ],
    strays: [],
  },
  {
    name: "killed diff and killed offline rewrite are strays",
    paths: [
      "sda.full.data",
      "sda.inc.virtnbdbackup.1.data",
      "sda.inc.virtnbdbackup.2.data",
      "sda.inc.virtnbdbackup.2.data.partial",
      "sda.diff.1795660497.data.partial",
    ],
    disks: ["sda"],
    checkpoints: CPT.map(ok),
    strays: ["sda.inc.virtnbdbackup.2.data.partial", "sda.diff.1795660497.data.partial"],
  },
];

for (const row of rows) {
  test(`auditChain: ${row.name}`, () => {
    const audit = auditChain(folderOf(row.paths), CPT);
    assert.deepEqual(audit.disks, row.disks);
    assert.deepEqual(audit.checkpoints, row.checkpoints);
    assert.deepEqual([...audit.strayPartials].sort(), [...row.strays].sort());
  });
}
