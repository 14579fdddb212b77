import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseImageBitmaps, parseLiveBitmaps } from "@vmbs/virt";
import { cptText, deleteChainFiles, insideFolder } from "./folder-effects.js";
import { classifyTmp } from "./stale-tmp.js";

describe("chain-check helpers", () => {
  it("classifies /var/tmp leftovers conservatively", () => {
    const now = 1_000_000;
    const entries = [
      { name: "virtnbdbackup.100", mtimeMs: now },
      { name: "virtnbdbackup.200", mtimeMs: now },
      { name: "virtnbdbackup.100.vda", mtimeMs: now },
      { name: "virtnbdbackup.100.vda.pid", mtimeMs: now },
      { name: "backup.AB12C.vda", mtimeMs: now - 120_000 },
      { name: "backup.YOUNG.vda", mtimeMs: now - 1_000 },
      { name: "backups-xyz", mtimeMs: 0 },
    ];
    const alive = (pid: number) => pid === 200;
    assert.deepEqual(classifyTmp(entries, { alive, anyJobActive: false, now }), {
      sockets: ["/var/tmp/virtnbdbackup.100", "/var/tmp/virtnbdbackup.100.vda"],
      scratch: ["/var/tmp/backup.AB12C.vda"],
      pidFiles: ["/var/tmp/virtnbdbackup.100.vda.pid"],
    });
    assert.deepEqual(classifyTmp(entries, { alive, anyJobActive: true, now }).scratch, [], "a running job may own any scratch file");
  });

  it("reads bitmap names and the in-use flag", () => {
    const json = JSON.stringify({ "format-specific": { data: { bitmaps: [{ name: "virtnbdbackup.0", flags: ["auto"] }, { name: "virtnbdbackup.1", flags: ["in-use", "auto"] }] } } });
    assert.deepEqual(parseImageBitmaps(json), [
      { name: "virtnbdbackup.0", inUse: false },
      { name: "virtnbdbackup.1", inUse: true },
    ]);
    assert.deepEqual(parseImageBitmaps("{}"), []);
    const live = JSON.stringify({ return: [{ inserted: { "node-name": "libvirt-1-format", "dirty-bitmaps": [{ name: "virtnbdbackup.3" }] } }, { device: "cd" }] });
    assert.deepEqual(parseLiveBitmaps(live), [{ node: "libvirt-1-format", name: "virtnbdbackup.3" }]);
  });

  it("keeps plan paths inside the chain folder and writes .cpt like the engine", () => {
    assert.equal(insideFolder("/b/dom", "checkpoints/virtnbdbackup.1.xml"), "/b/dom/checkpoints/virtnbdbackup.1.xml");
    for (const bad of ["../other/x", "/etc/passwd", "", "checkpoints/../../x", "."]) assert.throws(() => insideFolder("/b/dom", bad), /not inside/);
    assert.equal(cptText(["virtnbdbackup.0", "virtnbdbackup.1"]), '["virtnbdbackup.0", "virtnbdbackup.1"]');
    assert.equal(cptText([]), "[]");
  });

  it("deletes only files the tool makes: a list naming anything else is refused before the first deletion", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vmbs-delete-files-"));
    try {
      for (const f of ["vda.inc.virtnbdbackup.3.data.partial", "vdisk1.img"]) await writeFile(join(dir, f), "x");
      await assert.rejects(deleteChainFiles(dir, "vm1", ["vda.inc.virtnbdbackup.3.data.partial", "vdisk1.img"]), /refusing to delete vdisk1\.img/);
      assert.deepEqual((await readdir(dir)).sort(), ["vda.inc.virtnbdbackup.3.data.partial", "vdisk1.img"]);
      await deleteChainFiles(dir, "vm1", ["vda.inc.virtnbdbackup.3.data.partial"]);
      assert.deepEqual(await readdir(dir), ["vdisk1.img"]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
