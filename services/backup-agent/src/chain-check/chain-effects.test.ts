import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { copyFile, chown, mkdtemp, readdir, rm, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { createServer } from "node:net";
import { join } from "node:path";
import { isPidAlive } from "@vmbs/bus";
import { parseImageBitmaps, parseLiveBitmaps } from "@vmbs/virt";
import { cptText, deleteChainFiles, insideFolder } from "./folder-effects.js";
import { classifyTmp, findStaleTmp, trustedTmpEntry, type TmpEntry } from "./stale-tmp.js";
import { cleanTmp, killQemuNbd } from "./tmp-effects.js";

const NOBODY = 65534;
const QEMU = 64055;

describe("chain-check helpers", () => {
  it("classifies /var/tmp leftovers conservatively", () => {
    const now = 1_000_000;
    const entries: TmpEntry[] = [
      { name: "virtnbdbackup.100", mtimeMs: now, uid: QEMU, kind: "socket" },
      { name: "virtnbdbackup.200", mtimeMs: now, uid: 0, kind: "socket" },
      { name: "virtnbdbackup.100.vda", mtimeMs: now, uid: 0, kind: "socket" },
      { name: "virtnbdbackup.100.vda.pid", mtimeMs: now, uid: 0, kind: "file" },
      { name: "backup.AB12C.vda", mtimeMs: now - 120_000, uid: QEMU, kind: "file" },
      { name: "backup.YOUNG.vda", mtimeMs: now - 1_000, uid: QEMU, kind: "file" },
      { name: "backups-xyz", mtimeMs: 0, uid: 0, kind: "file" },
      { name: "virtnbdbackup.300", mtimeMs: now, uid: NOBODY, kind: "socket" },
      { name: "virtnbdbackup.300.vdb.pid", mtimeMs: now, uid: NOBODY, kind: "file" },
      { name: "backup.NOBDY.vda", mtimeMs: now - 120_000, uid: NOBODY, kind: "file" },
    ];
    const alive = (pid: number) => pid === 200;
    const o = { alive, now, qemuUids: new Set([QEMU]) };
    assert.deepEqual(classifyTmp(entries, { ...o, anyJobActive: false }), {
      sockets: ["/var/tmp/virtnbdbackup.100", "/var/tmp/virtnbdbackup.100.vda"],
      scratch: ["/var/tmp/backup.AB12C.vda"],
      pidFiles: ["/var/tmp/virtnbdbackup.100.vda.pid"],
    });
    assert.deepEqual(classifyTmp(entries, { ...o, anyJobActive: true }).scratch, [], "a running job may own any scratch file");
  });

  const trustRows: [string, Pick<TmpEntry, "name" | "uid" | "kind">, boolean][] = [
    ["a root pid file", { name: "virtnbdbackup.1.vda.pid", uid: 0, kind: "file" }, true],
    ["a pid file of QEMU's account (qemu-nbd runs as root)", { name: "virtnbdbackup.1.vda.pid", uid: QEMU, kind: "file" }, false],
    ["a pid file of nobody", { name: "virtnbdbackup.1.vda.pid", uid: NOBODY, kind: "file" }, false],
    ["a root symlink named like a pid file", { name: "virtnbdbackup.1.vda.pid", uid: 0, kind: "other" }, false],
    ["QEMU's socket", { name: "virtnbdbackup.1", uid: QEMU, kind: "socket" }, true],
    ["nobody's socket", { name: "virtnbdbackup.1", uid: NOBODY, kind: "socket" }, false],
    ["QEMU's scratch file", { name: "backup.ABCDE.vda", uid: QEMU, kind: "file" }, true],
    ["nobody's scratch file", { name: "backup.ABCDE.vda", uid: NOBODY, kind: "file" }, false],
    ["a root directory", { name: "backup.ABCDE.vda", uid: 0, kind: "other" }, false],
  ];
  for (const [name, entry, trusted] of trustRows)
    it(`/var/tmp trust: ${name} → ${trusted}`, () => assert.equal(trustedTmpEntry(entry, new Set([QEMU])), trusted));

  it("real look-alike files owned by nobody are never listed, deleted or believed (their pid is not killed)", async () => {
    const dir = await mkdtemp("/var/tmp/vmbs-tmp-test-");
    // A stand-in for a stale qemu-nbd: /proc/<pid>/comm says "qemu-nbd".
    const fake = join(dir, "qemu-nbd");
    await copyFile("/bin/sleep", fake);
    const proc = spawn(fake, ["300"], { stdio: "ignore" });
    const sockets: ReturnType<typeof createServer>[] = [];
    try {
      const pid = proc.pid!;
      const old = new Date(Date.now() - 600_000);
      const make = async (name: string, uid: number, content = "") => {
        await writeFile(join(dir, name), content);
        await chown(join(dir, name), uid, uid);
        await utimes(join(dir, name), old, old);
      };
      const socket = async (name: string, uid: number) => {
        const server = createServer();
        await new Promise<void>((resolve) => server.listen(join(dir, name), resolve));
        sockets.push(server);
        await chown(join(dir, name), uid, uid);
      };
      await make("virtnbdbackup.999991.vda.pid", NOBODY, `${pid}\n`);
      await make("backup.NOBDY.vda", NOBODY);
      await socket("virtnbdbackup.999992", NOBODY);
      await symlink(join(dir, "backup.NOBDY.vda"), join(dir, "virtnbdbackup.999993.vda.pid"));
      await make("virtnbdbackup.999994.vda.pid", 0, `${pid}\n`);
      await make("backup.ROOTS.vda", 0);
      await socket("virtnbdbackup.999995", 0);

      const stale = await findStaleTmp(async () => false, dir);
      assert.deepEqual(stale, {
        sockets: [join(dir, "virtnbdbackup.999995")],
        scratch: [join(dir, "backup.ROOTS.vda")],
        pidFiles: [join(dir, "virtnbdbackup.999994.vda.pid")],
      });

      // Even when a plan names them, nobody's files are not believed or removed.
      assert.deepEqual(await killQemuNbd([join(dir, "virtnbdbackup.999991.vda.pid"), join(dir, "virtnbdbackup.999993.vda.pid")], dir), []);
      assert.ok(isPidAlive(pid), "the pid in nobody's pid file was left alone");
      await cleanTmp([join(dir, "virtnbdbackup.999991.vda.pid"), join(dir, "backup.NOBDY.vda"), join(dir, "virtnbdbackup.999992")], dir);
      const left = new Set(await readdir(dir));
      for (const n of ["virtnbdbackup.999991.vda.pid", "backup.NOBDY.vda", "virtnbdbackup.999992"]) assert.ok(left.has(n), `${n} was deleted`);

      // The root-owned ones are acted on.
      assert.deepEqual(await killQemuNbd(stale.pidFiles, dir), [pid]);
      await cleanTmp([...stale.pidFiles, ...stale.scratch, ...stale.sockets], dir);
      const after = new Set(await readdir(dir));
      for (const p of [...stale.pidFiles, ...stale.scratch, ...stale.sockets]) assert.ok(!after.has(p.slice(dir.length + 1)), `${p} is still there`);
    } finally {
      proc.kill("SIGKILL");
      for (const s of sockets) s.close();
      await rm(dir, { recursive: true, force: true });
    }
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
