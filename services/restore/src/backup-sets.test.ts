import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ChainFolder } from "@vmbs/chain";
import { BackupSetError, mtimeOrderProblem, setFolder } from "./backup-sets.js";

const folder = (files: [string, number][]): ChainFolder => ({
  dir: "/b/vm",
  exists: true,
  files: files.map(([path, mtimeMs]) => ({ path, size: 1, mtimeMs })),
  cpt: ["virtnbdbackup.0", "virtnbdbackup.1", "virtnbdbackup.2"],
});

describe("backup sets", () => {
  const cases: [string, [string, number][], RegExp | undefined][] = [
    ["chain order", [["vda.full.data", 1], ["vda.inc.virtnbdbackup.1.data", 2], ["vda.inc.virtnbdbackup.2.data", 3]], undefined],
    ["two disks, each in order", [["vda.full.data", 1], ["vdb.full.data", 5], ["vda.inc.virtnbdbackup.1.data", 2], ["vdb.inc.virtnbdbackup.1.data", 6]], undefined],
    ["a copy that lost its mtimes: the full is newest", [["vda.full.data", 9], ["vda.inc.virtnbdbackup.1.data", 2], ["vda.inc.virtnbdbackup.2.data", 3]], /vda\.inc\.virtnbdbackup\.1\.data is not newer than vda\.full\.data/],
    ["equal mtimes cannot be ordered", [["vda.full.data", 1], ["vda.inc.virtnbdbackup.1.data", 1]], /not newer/],
    ["inc 10 is not inc 1", [["vda.full.data", 1], ["vda.inc.virtnbdbackup.10.data", 0], ["vda.inc.virtnbdbackup.1.data", 2]], undefined],
  ];
  for (const [what, files, problem] of cases)
    it(`mtime order: ${what}`, () => {
      const found = mtimeOrderProblem(folder(files));
      if (problem) assert.match(found ?? "", problem);
      else assert.equal(found, undefined);
    });

  it("accepts only the active folder or an archive of exactly that domain", () => {
    assert.equal(setFolder("/b", "vm"), "/b/vm");
    assert.equal(setFolder("/b", "vm", "vm.2026-11-20+03:00:00.1234567890"), "/b/vm.2026-11-20+03:00:00.1234567890");
    for (const bad of ["vm2", "vm.x", "..", "vm/../etc", "other.2026-11-20+03:00:00.1234567890"]) assert.throws(() => setFolder("/b", "vm", bad), BackupSetError, bad);
    assert.throws(() => setFolder("/b", ".."));
  });
});
