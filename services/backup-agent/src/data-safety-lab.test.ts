import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { lstat, readdir, readFile, rename, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { subjects } from "@vmbs/contracts";
import { parseArchiveFolderName } from "@vmbs/chain";
import { createAgentHarness, recordEvents, type AgentHarness, type EventLog } from "@vmbs/lab";

/* Issue 7 points 1 and 3 on the real stack: nothing the tool did not make is deleted, no symlink is followed,
 * and retention of one domain never deletes another domain's active chain that looks like its archive. */

const MiB = 1024 * 1024;
const sha = async (path: string) => createHash("sha256").update(await readFile(path)).digest("hex");
/** sha256 of every file below `dir`, by relative path. */
async function treeHashes(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) {
      const path = join(e.parentPath, e.name);
      out[path.slice(dir.length + 1)] = await sha(path);
    }
  }
  return out;
}

describe("data safety of chain checks and retention (real lab)", { timeout: 600_000 }, () => {
  let h: AgentHarness;
  const logs: EventLog[] = [];
  let n = 0;
  /** A fresh agent (own host id, same backup root) that serves domains created after it started. */
  const agent = async (env: Record<string, string> = {}) => {
    const host = `safe${n++}`;
    const ev = recordEvents(h.nc, host);
    logs.push(ev);
    await h.startAgent({ HOST_ID: host, ...env });
    return { host, ev };
  };
  before(async () => {
    h = await createAgentHarness("safe");
  });
  after(async () => {
    for (const l of logs) l.stop();
    await h?.close();
  });

  it("a killed first backup next to a user's disk image and notes: only the tool's files go, the user's are kept intact, attention names them", async () => {
    const { host, ev } = await agent();
    const dom = await h.lab.createDomain({ sizeMiB: 64 });
    await h.lab.writeGuest(dom.name, { offset: 0, length: 2 * MiB, pattern: 0x71 });
    h.nc.publish(subjects.cmd.backup(host), JSON.stringify({ domain: dom.name, requestId: "first" }));
    assert.equal((await ev.waitBackup((e) => e.requestId === "first" && e.type !== "started")).type, "completed");
    const folder = join(h.backupRoot, dom.name);
    // The user's files, then the state a full killed mid-transfer leaves: checkpoint 0 recorded, data unfinished.
    await writeFile(join(folder, "vdisk1.img"), randomBytes(MiB));
    await writeFile(join(folder, "notes.txt"), "where the VM's ISO lives\n");
    const userHashes = { "vdisk1.img": await sha(join(folder, "vdisk1.img")), "notes.txt": await sha(join(folder, "notes.txt")) };
    await rename(join(folder, "vda.full.data"), join(folder, "vda.full.data.partial"));

    h.nc.publish(subjects.cmd.check(host), JSON.stringify({ domain: dom.name, requestId: "check-foreign" }));
    const checked = await ev.waitChain((e) => e.requestId === "check-foreign" && e.type === "checked", 120_000);
    assert.equal(checked.plan, "delete-partial-chain", checked.reason);
    const attention = await ev.waitChain((e) => e.requestId === "check-foreign" && e.type === "attention");
    assert.match(attention.reason, /notes\.txt, vdisk1\.img/);
    const aside = attention.folders?.[0] ?? "";
    assert.match(aside, /\.foreign-files$/);
    assert.equal(parseArchiveFolderName(dom.name, aside), null, "the set-aside folder is no archive: retention never touches it");
    assert.deepEqual((await readdir(join(h.backupRoot, aside))).sort(), ["notes.txt", "vdisk1.img"], "only the tool's own files were removed");
    for (const [file, hash] of Object.entries(userHashes)) assert.equal(await sha(join(h.backupRoot, aside, file)), hash, `${file} intact`);
    // The chain check then started the new chain in a clean folder.
    await ev.waitBackup((e) => e.domain === dom.name && e.type === "completed" && e.requestId !== "first", 120_000);
    assert.ok((await readdir(folder)).includes("vda.full.data"));
  });

  it("retention of an archive holding a user's file deletes the chain but keeps the file", async () => {
    const { host, ev } = await agent({ LOCAL_BACKUP_CHAINS_TO_KEEP: "1" });
    const dom = await h.lab.createDomain({ sizeMiB: 64 });
    const folder = join(h.backupRoot, dom.name);
    const step = async (verb: "backup" | "rotate", requestId: string) => {
      h.nc.publish(verb === "backup" ? subjects.cmd.backup(host) : subjects.cmd.rotate(host), JSON.stringify({ domain: dom.name, requestId }));
      if (verb === "backup") assert.equal((await ev.waitBackup((e) => e.requestId === requestId && e.type !== "started")).type, "completed");
      else await ev.waitChain((e) => e.requestId === requestId && e.type === "archived");
    };
    await step("backup", "b1");
    await writeFile(join(folder, "notes.txt"), "do not lose me\n");
    const notes = await sha(join(folder, "notes.txt"));
    await step("rotate", "r1");
    const [first] = (await readdir(h.backupRoot)).filter((f) => parseArchiveFolderName(dom.name, f));
    assert.ok(first);
    await step("backup", "b2");
    await step("rotate", "r2");
    const attention = await ev.waitChain((e) => e.requestId === "r2" && e.type === "attention");
    assert.match(attention.reason, new RegExp(`archive ${first.replace(/[.+]/g, "\\$&")} held files virtnbdbackup did not write \\(notes\\.txt\\)`));
    const aside = `${first}.foreign-files`;
    assert.deepEqual(await readdir(join(h.backupRoot, aside)), ["notes.txt"], "the chain's files are gone, the user's file stays");
    assert.equal(await sha(join(h.backupRoot, aside, "notes.txt")), notes);
    const archives = (await readdir(h.backupRoot)).filter((f) => parseArchiveFolderName(dom.name, f));
    assert.equal(archives.length, 1, `LOCAL_BACKUP_CHAINS_TO_KEEP=1: ${archives.join(", ")}`);
  });

  it("a symlinked chain folder is never followed: the backup is refused with attention and the target stays intact", async () => {
    const { host, ev } = await agent();
    const dom = await h.lab.createDomain({ sizeMiB: 64 });
    const target = await h.lab.tempDir("elsewhere-");
    await writeFile(join(target, "vda.full.data.partial"), randomBytes(64 * 1024));
    await writeFile(join(target, "family-photos.tar"), randomBytes(256 * 1024));
    await writeFile(join(target, `${dom.name}.cpt`), '["virtnbdbackup.0"]');
    const before = await treeHashes(target);
    await symlink(target, join(h.backupRoot, dom.name));

    h.nc.publish(subjects.cmd.backup(host), JSON.stringify({ domain: dom.name, requestId: "via-link" }));
    const failed = await ev.waitBackup((e) => e.requestId === "via-link" && e.type !== "started");
    assert.equal(failed.type, "failed");
    assert.match(failed.type === "failed" ? failed.reason : "", /symbolic link/);
    h.nc.publish(subjects.cmd.check(host), JSON.stringify({ domain: dom.name, requestId: "check-link" }));
    const attention = await ev.waitChain((e) => e.requestId === "check-link" && e.type === "attention");
    assert.match(attention.reason, /is a symbolic link/);
    await ev.waitChain((e) => e.requestId === "check-link" && e.type === "checked");

    assert.ok((await lstat(join(h.backupRoot, dom.name))).isSymbolicLink(), "the link itself is left as it was");
    const after = await treeHashes(target);
    assert.deepEqual(after, before, "nothing behind the link changed");
    assert.ok(!ev.backup.some((e) => e.domain === dom.name && e.type === "started"), "no backup ran through the link");
  });

  it("retention of web never deletes the active chain of a domain named web.<timestamp>", async () => {
    const { host, ev } = await agent({ LOCAL_BACKUP_CHAINS_TO_KEEP: "1" });
    const web = `${h.lab.domainPrefix}web${randomBytes(3).toString("hex")}`;
    const lookAlike = `${web}.2026-01-01+00:00:00.0123456789`;
    await h.lab.createDomain({ name: web, sizeMiB: 64 });
    await h.lab.createDomain({ name: lookAlike, sizeMiB: 64 });
    assert.ok(parseArchiveFolderName(web, lookAlike), "the second domain's folder reads as an archive of the first");
    const run = async (verb: "backup" | "rotate", domain: string, requestId: string) => {
      h.nc.publish(verb === "backup" ? subjects.cmd.backup(host) : subjects.cmd.rotate(host), JSON.stringify({ domain, requestId }));
      if (verb === "backup") {
        const e = await ev.waitBackup((x) => x.requestId === requestId && x.type !== "started");
        assert.equal(e.type, "completed", JSON.stringify(e));
        return e.type === "completed" ? e.checkpoint : "";
      }
      const e = await ev.waitChain((x) => x.requestId === requestId && (x.type === "archived" || x.type === "failed"));
      assert.equal(e.type, "archived", e.reason);
      return "";
    };
    await run("backup", lookAlike, "look-0");
    const lookFolder = join(h.backupRoot, lookAlike);
    const before = await treeHashes(lookFolder);
    // Two chains of web: each rotation archives one and runs retention (keep 1) over every web.* folder.
    await run("backup", web, "web-0");
    await run("rotate", web, "web-rot-1");
    await run("backup", web, "web-1");
    await run("rotate", web, "web-rot-2");
    // The rotation's retention deletes web's older archive (and, before issue 7, the look-alike's chain with it).
    await ev.waitChain((e) => e.requestId === "web-rot-2" && e.type === "pruned");

    const webArchives = (await readdir(h.backupRoot)).filter((f) => f !== lookAlike && parseArchiveFolderName(web, f));
    assert.equal(webArchives.length, 1, `web keeps one archive: ${webArchives.join(", ")}`);
    assert.ok(ev.chain.some((e) => e.domain === web && e.type === "pruned"), "retention of web did delete its own old archive");
    assert.ok(!ev.chain.some((e) => (e.folders ?? []).includes(lookAlike)), "no event touched the look-alike's folder");
    assert.deepEqual(await treeHashes(lookFolder), before, "the look-alike's active chain is intact");
    assert.equal(await run("backup", lookAlike, "look-1"), "virtnbdbackup.1", "and its chain continues");
  });
});
