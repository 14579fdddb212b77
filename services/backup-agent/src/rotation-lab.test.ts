import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { rename } from "node:fs/promises";
import { join } from "node:path";
import { publishJson } from "@vmbs/bus";
import { subjects } from "@vmbs/contracts";
import { parseArchiveFolderName } from "@vmbs/chain";
import { completed, createChainTestKit, MiB, outcome, type ChainTestKit } from "@vmbs/lab";

/* Issue 3 acceptance 4 (rotation, retention, pinned archives) and 6 (one writer per chain), on real backups. */

describe("rotation, retention and one writer per chain (real lab)", { timeout: 600_000 }, () => {
  let k: ChainTestKit;
  before(async () => {
    k = await createChainTestKit();
  });
  afterEach(async () => k.stopAgents());
  after(async () => k?.close());

  it("rotates after MAX_BACKUPS_PER_CHAIN, keeps exactly N archives, and never deletes a pinned one", async () => {
    const host = "rot1";
    const ev = k.events(host);
    const dom = await k.lab.createDomain();
    await k.agentFor(host, [dom.name], { MAX_BACKUPS_PER_CHAIN: "2", LOCAL_BACKUP_CHAINS_TO_KEEP: "1" });
    await ev.waitBackup(completed(dom.name), 60_000); // the startup check starts the chain: virtnbdbackup.0
    const run = async (n: number) => {
      await k.lab.writeGuest(dom.name, { offset: n * MiB, length: MiB, pattern: n });
      k.backup(host, { domain: dom.name, requestId: `r${n}` });
      const e = await ev.waitBackup(outcome(`r${n}`));
      assert.equal(e.type, "completed", JSON.stringify(e));
      return e.type === "completed" ? e.checkpoint : "";
    };
    assert.equal(await run(1), "virtnbdbackup.1");
    assert.equal(await run(2), "virtnbdbackup.0", "the full chain (2 checkpoints) was archived and a new one started");
    const [first] = await k.archivesOf(dom.name);
    assert.ok(first, "one archive");
    // Pin the first archive by renaming it: retention must never touch it.
    const pinned = `${first}-keep`;
    await rename(join(k.backupRoot, first), join(k.backupRoot, pinned));
    assert.equal(await run(3), "virtnbdbackup.1");
    assert.equal(await run(4), "virtnbdbackup.0");
    assert.equal(await run(5), "virtnbdbackup.1");
    assert.equal(await run(6), "virtnbdbackup.0");
    const archives = (await k.archivesOf(dom.name)).filter((n) => parseArchiveFolderName(dom.name, n));
    assert.equal(archives.length, 1, `exactly LOCAL_BACKUP_CHAINS_TO_KEEP=1 archive kept: ${archives.join(", ")}`);
    assert.ok(ev.chain.some((e) => e.domain === dom.name && e.type === "pruned"), "the deletion was announced");
    assert.ok((await k.hashTree(join(k.backupRoot, pinned)))["vda.full.data"], "the pinned archive survives intact");
  });

  it("a backup and a rotation of the same domain at the same moment never interleave", async () => {
    const host = "rot2";
    const ev = k.events(host);
    const dom = await k.lab.createDomain({ sizeMiB: 512 });
    await k.agentFor(host, [dom.name]);
    await ev.waitBackup(completed(dom.name), 60_000);
    await k.lab.writeGuest(dom.name, { offset: 0, length: 256 * MiB, pattern: 0x42 });
    await Promise.all([
      publishJson(k.nc, subjects.cmd.backup(host), { domain: dom.name, requestId: "together" }),
      publishJson(k.nc, subjects.cmd.rotate(host), { domain: dom.name, requestId: "together" }),
    ]);
    const done = await ev.waitBackup(outcome("together"));
    assert.equal(done.type, "completed", JSON.stringify(done));
    const archived = await ev.waitChain((e) => e.requestId === "together" && e.type === "archived");
    const started = ev.backup.find((e) => e.requestId === "together" && e.type === "started");
    assert.ok(started);
    // Either the rotation came first (the backup then started a new chain) or after the backup finished.
    const rotationFirst = archived.at < started.at;
    assert.ok(rotationFirst || archived.at > done.at, `rotation at ${archived.at} fell inside the backup ${started.at}..${done.at}`);
    assert.equal(done.type === "completed" && done.checkpoint, rotationFirst ? "virtnbdbackup.0" : "virtnbdbackup.1");
  });

  it("answers malformed rotate and retention commands with a failed chain event and touches nothing", async () => {
    const host = "rot3";
    const ev = k.events(host);
    const dom = await k.lab.createDomain();
    await k.agentFor(host, [dom.name]);
    await ev.waitBackup(completed(dom.name), 60_000);
    const before = await k.hashTree(k.backupRoot);
    k.nc.publish(subjects.cmd.rotate(host), "{not json");
    k.nc.publish(subjects.cmd.retention(host), JSON.stringify({ domain: "../../etc", requestId: "bad-retention" }));
    k.nc.publish(subjects.cmd.rotate(host), JSON.stringify({ domain: "no-such-domain", requestId: "unknown-rotate" }));
    const notJson = await ev.waitChain((e) => e.type === "failed" && /not valid JSON/.test(e.reason));
    assert.equal(notJson.domain, undefined);
    const traversal = await ev.waitChain((e) => e.requestId === "bad-retention" && e.type === "failed");
    assert.match(traversal.reason, /must not contain '\/'/);
    const unknown = await ev.waitChain((e) => e.requestId === "unknown-rotate" && e.type === "failed");
    assert.match(unknown.reason, /not a scheduled domain of this host/);
    assert.deepEqual(await k.hashTree(k.backupRoot), before, "nothing in the backup root changed");
  });
});
