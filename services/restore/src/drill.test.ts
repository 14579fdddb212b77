import { test } from "node:test";
import assert from "node:assert/strict";
import type { DrillChainResult } from "@vmbs/contracts";
import { describeFaults, drillTargetsAmong, type RootFolder } from "./drill.js";

const T1 = "2024-01-01+00:00:00.0000000000";
const T2 = "2024-02-01+00:00:00.0000000000";
const rows: [name: string, folders: RootFolder[], expected: [string, string][]][] = [
  [
    "active chains first, then archives newest first, by domain",
    [
      { name: `vm2.${T1}`, ownCpt: false },
      { name: "vm1", ownCpt: true },
      { name: `vm1.${T1}`, ownCpt: false },
      { name: `vm1.${T2}`, ownCpt: false },
      { name: "vm2", ownCpt: true },
    ],
    [["vm1", "vm1"], ["vm1", `vm1.${T2}`], ["vm1", `vm1.${T1}`], ["vm2", "vm2"], ["vm2", `vm2.${T1}`]],
  ],
  ["archives of a domain without an active chain", [{ name: `gone.${T1}`, ownCpt: false }], [["gone", `gone.${T1}`]]],
  [
    "no chain: a folder without its .cpt, a pinned or set-aside archive, the scratch folder, the marker",
    [
      { name: "photos", ownCpt: false },
      { name: `vm1.${T1}-keep`, ownCpt: false },
      { name: `vm1.${T1}.foreign-files`, ownCpt: false },
      { name: ".vmbs-drill", ownCpt: true },
      { name: ".vm-babysitter-root", ownCpt: true },
    ],
    [],
  ],
  ["a dotted domain name", [{ name: "a.b", ownCpt: true }, { name: `a.b.${T1}`, ownCpt: false }], [["a.b", "a.b"], ["a.b", `a.b.${T1}`]]],
];
for (const [name, folders, expected] of rows)
  test(`drillTargetsAmong: ${name}`, () => assert.deepEqual(drillTargetsAmong(folders).map((t) => [t.domain, t.set]), expected));

test("describeFaults names set, checkpoint and reason of every fault", () => {
  const base: DrillChainResult = { domain: "vm1", set: "vm1", ok: false, checkpoints: 3, verifiedFiles: 2, unverifiedFiles: [], images: [], faults: [], durationMs: 1 };
  const text = describeFaults([
    { ...base, faults: [{ checkpoint: "virtnbdbackup.2", file: "vda.inc.virtnbdbackup.2.data", reason: "vda.inc.virtnbdbackup.2.data does not match" }] },
    { ...base, set: `vm1.${T1}`, ok: true },
    { ...base, set: `vm1.${T2}`, faults: [{ reason: "no checkpoint" }] },
  ]);
  assert.equal(text, `vm1: virtnbdbackup.2: vda.inc.virtnbdbackup.2.data does not match; vm1.${T2}: no checkpoint`);
});
