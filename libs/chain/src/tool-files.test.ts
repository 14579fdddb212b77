import { test } from "node:test";
import * as assert from "node:assert/strict";
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { foreignFiles, isToolFile } from "./chain-files.js";
import { NotAChainFolderError, removeToolFiles, setFolderAside } from "./remove-tool-files.js";

/* Which files the tool may ever delete: exact engine names only (issue 7 point 1). */
const rows: [path: string, domain: string, ours: boolean][] = [
  ["vda.full.data", "vm1", true],
  ["vda.full.data.partial", "vm1", true],
  ["sdb.copy.data", "vm1", true],
  ["sdb.copy.data.partial", "vm1", true],
  ["vda.inc.virtnbdbackup.12.data", "vm1", true],
  ["vda.inc.virtnbdbackup.12.data.partial", "vm1", true],
  ["vda.inc.virtnbdbackup.12.data.chksum", "vm1", true],
  ["vda.virtnbdbackup.3.qcow.json", "vm1", true],
  ["vda.copy.qcow.json", "vm1", true],
  ["vmconfig.virtnbdbackup.0.xml", "vm1", true],
  ["vmconfig.copy.xml", "vm1", true],
  ["checkpoints/virtnbdbackup.7.xml", "vm1", true],
  ["autostart.virtnbdbackup.2", "vm1", true],
  ["vm1_VARS.fd.virtnbdbackup.4", "vm1", true],
  ["vm1.cpt", "vm1", true],
  ["web server.cpt", "web server", true],
  ["backup.full.11262026023447.log", "vm1", true],
  ["backup.inc.11262026023451.log", "vm1", true],
  ["backup.auto.11262026023451.log", "vm1", true],
  [".vm1.cpt.vmbs-tmp", "vm1", true],
  // Our checksum files (checksums.ts) and their temporaries.
  ["checksums/virtnbdbackup.2.sha256", "vm1", true],
  ["checksums/.virtnbdbackup.2.sha256.vmbs-tmp", "vm1", true],
  // Anything else is someone else's.
  ["vdisk1.img", "vm1", false],
  ["notes.txt", "vm1", false],
  ["other.cpt", "vm1", false],
  ["vm1.cpt.bak", "vm1", false],
  ["vda.full.data.old", "vm1", false],
  ["vda.inc.virtnbdbackup.x.data", "vm1", false],
  ["vda.diff.1795660497.data", "vm1", false],
  ["my disk.full.data", "vm1", false],
  ["checkpoints/notes.xml", "vm1", false],
  ["checkpoints/virtnbdbackup.1.xml.bak", "vm1", false],
  ["photos/virtnbdbackup.1.xml", "vm1", false],
  ["photos/vda.full.data", "vm1", false],
  ["backup.full.log", "vm1", false],
  ["backup.weird.123.log", "vm1", false],
  [".cpt", "", false],
  ["checksums/notes.txt", "vm1", false],
  ["checksums/virtnbdbackup.2.sha256.bak", "vm1", false],
  ["checksums/virtnbdbackup.x.sha256", "vm1", false],
  ["checkpoints/virtnbdbackup.2.sha256", "vm1", false],
  ["virtnbdbackup.2.sha256", "vm1", false],
  ["photos/checksums/virtnbdbackup.2.sha256", "vm1", false],
];

for (const [path, domain, ours] of rows) {
  test(`isToolFile(${JSON.stringify(path)}, ${JSON.stringify(domain)}) = ${ours}`, () => {
    assert.equal(isToolFile(path, domain), ours);
  });
}

test("foreignFiles lists what the tool did not make", () => {
  const files = ["vm1.cpt", "vda.full.data", "vdisk1.img", "checkpoints/virtnbdbackup.0.xml", "notes.txt"];
  const folder = { dir: "/b/vm1", exists: true, files: files.map((path) => ({ path, size: 1, mtimeMs: 1 })), cpt: null };
  assert.deepEqual(foreignFiles(folder, "vm1").map((f) => f.path), ["vdisk1.img", "notes.txt"]);
});

test("removeToolFiles deletes only the tool's files, rmdirs what became empty, keeps the rest byte for byte", async () => {
  const base = await mkdtemp(join(tmpdir(), "vmbs-tool-files-"));
  try {
    const dir = join(base, "vm1");
    await mkdir(join(dir, "checkpoints"), { recursive: true });
    await mkdir(join(dir, "photos"));
    await mkdir(join(dir, "checksums"));
    const own = ["vm1.cpt", "vda.full.data.partial", "vmconfig.virtnbdbackup.0.xml", "backup.full.01012024000000.log", "checkpoints/virtnbdbackup.0.xml", "checksums/virtnbdbackup.0.sha256"];
    for (const f of own) await writeFile(join(dir, f), "ours");
    await writeFile(join(dir, "vdisk1.img"), "user disk");
    await writeFile(join(dir, "photos", "vda.full.data"), "user photo");
    const outside = join(base, "outside");
    await mkdir(outside);
    await writeFile(join(outside, "vda.full.data"), "elsewhere");
    await symlink(outside, join(dir, "link"));

    const r = await removeToolFiles(dir, "vm1");
    assert.deepEqual([...r.removed].sort(), [...own].sort());
    assert.deepEqual(r.kept, ["link", "photos/", "vdisk1.img"]);
    assert.equal(r.folderRemoved, false);
    assert.deepEqual((await readdir(dir)).sort(), ["link", "photos", "vdisk1.img"], "checkpoints/ and checksums/ were emptied and removed");
    assert.equal(await readFile(join(dir, "vdisk1.img"), "utf8"), "user disk");
    assert.equal(await readFile(join(dir, "photos", "vda.full.data"), "utf8"), "user photo");
    assert.equal(await readFile(join(outside, "vda.full.data"), "utf8"), "elsewhere", "a link inside is never followed");

    const aside = await setFolderAside(base, "vm1", "vm1.2024-01-01+00:00:00.0000000000");
    assert.equal(aside, "vm1.2024-01-01+00:00:00.0000000000.foreign-files");
    assert.ok((await lstat(join(base, aside, "vdisk1.img"))).isFile());

    const clean = join(base, "vm2");
    await mkdir(join(clean, "checkpoints"), { recursive: true });
    await writeFile(join(clean, "vm2.cpt"), "[]");
    await writeFile(join(clean, "checkpoints", "virtnbdbackup.0.xml"), "<x/>");
    const r2 = await removeToolFiles(clean, "vm2");
    assert.equal(r2.folderRemoved, true);
    await assert.rejects(lstat(clean), /ENOENT/);
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});

test("removeToolFiles refuses a symlinked folder and leaves its target intact", async () => {
  const base = await mkdtemp(join(tmpdir(), "vmbs-tool-files-"));
  try {
    const target = join(base, "target");
    await mkdir(target);
    await writeFile(join(target, "vm1.cpt"), "[]");
    await symlink(target, join(base, "vm1"));
    await assert.rejects(removeToolFiles(join(base, "vm1"), "vm1"), NotAChainFolderError);
    assert.equal(await readFile(join(target, "vm1.cpt"), "utf8"), "[]");
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});
