import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFile, stat, truncate } from "node:fs/promises";
import { join } from "node:path";
import { subjects } from "@vmbs/contracts";
import { chainOf, completed, createChainTestKit, MiB, outcome, waitFor, type ChainTestKit } from "@vmbs/lab";

/*
 * Issue 3 acceptance 1–3 against the real stack: the agent runs as a child process (`vmbs agent`) so it can
 * be killed with SIGKILL together with its virtnbdbackup, exactly as a crash would.
 */

describe("self-healing chains (issue 3 acceptance)", { timeout: 600_000 }, () => {
  let k: ChainTestKit;
  before(async () => {
    k = await createChainTestKit();
  });
  afterEach(async () => k.stopAgents());
  after(async () => k?.close());

  it("1: agent and engine SIGKILLed during a full → repaired within 60 s, next backup good, archives untouched", async () => {
    const host = "cc1";
    const ev = k.events(host);
    const dom = await k.lab.createDomain({ sizeMiB: 256 });
    await k.lab.writeGuest(dom.name, { offset: 0, length: 16 * MiB, pattern: 0x10 });
    let agent = await k.agentFor(host, [dom.name]);
    await ev.waitBackup(completed(dom.name), 60_000); // the startup check starts the missing chain
    await k.lab.writeGuest(dom.name, { offset: 32 * MiB, length: 64 * MiB, pattern: 0x11 });

    const folder = join(k.backupRoot, dom.name);
    const frozen = agent.freezeEngineWhen(dom.name, async () => (await k.partialIn(folder)).length > 0);
    k.backup(host, { domain: dom.name, level: "full", requestId: "killed-full" });
    await frozen;
    await ev.waitBackup((e) => e.requestId === "killed-full" && e.type === "started", 60_000);
    const [archive] = await k.archivesOf(dom.name);
    assert.ok(archive, "the full archived the previous chain");
    const archived = await k.hashTree(join(k.backupRoot, archive));
    await agent.kill9();
    assert.notEqual(await k.jobType(dom.name), "None", "the killed engine left its libvirt job behind");
    await k.dropPendingCommands(host);

    const restarted = Date.now();
    const since = new Date(restarted).toISOString();
    agent = await k.agentFor(host, [dom.name]);
    await ev.waitChain(chainOf(dom.name, "repaired", /abort-job/, since), 60_000);
    const checked = await ev.waitChain(chainOf(dom.name, "checked", undefined, since), 60_000);
    assert.equal(checked.plan, "delete-partial-chain", checked.reason);
    assert.ok(Date.now() - restarted < 60_000, "repaired within 60 s");
    assert.equal(await k.jobType(dom.name), "None", "no job left");
    assert.deepEqual(await k.partialIn(folder), [], "the partial data is gone");
    assert.ok(ev.chain.some(chainOf(dom.name, "pruned", /delete-checkpoint virtnbdbackup\.0/, since)), "the stale checkpoint was deleted");
    assert.ok(ev.chain.some(chainOf(dom.name, "deleted", undefined, since)), "the interrupted folder was deleted");
    await ev.waitBackup((e) => completed(dom.name)(e) && e.at > new Date(restarted).toISOString(), 60_000);
    assert.deepEqual(await k.checkpoints(dom.name), ["virtnbdbackup.0"], "libvirt holds only the new chain's checkpoint");

    k.backup(host, { domain: dom.name, requestId: "after-kill" });
    const next = await ev.waitBackup(outcome("after-kill"));
    assert.equal(next.type === "completed" && next.checkpoint, "virtnbdbackup.1", JSON.stringify(next));
    assert.deepEqual(await k.hashTree(join(k.backupRoot, archive)), archived, "the archived chain is byte-for-byte untouched");
    await agent.stop();
  });

  it("2: SIGKILL during an incremental of a 2-checkpoint chain → repaired with VM_ALLOW_BACKUP_CHAIN_FIX, archived without; every checkpoint restores", async () => {
    const host = "cc2";
    const ev = k.events(host);
    const [fix, nofix] = [await k.lab.createDomain({ sizeMiB: 256 }), await k.lab.createDomain({ sizeMiB: 256 })];
    const both = [fix.name, nofix.name];
    const digests: Record<string, string[]> = { [fix.name]: [], [nofix.name]: [] };
    for (const d of both) await k.lab.writeGuest(d, { offset: 0, length: 8 * MiB, pattern: 0x20 });
    let agent = await k.agentFor(host, both);
    for (const d of both) await ev.waitBackup(completed(d), 90_000);
    for (const d of both) digests[d]!.push(await k.lab.diskDigest(d));
    for (const d of both) await k.lab.writeGuest(d, { offset: 16 * MiB, length: 4 * MiB, pattern: 0x21 });
    for (const d of both) k.backup(host, { domain: d, requestId: `inc1-${d}` });
    for (const d of both) assert.equal((await ev.waitBackup(outcome(`inc1-${d}`))).type, "completed");
    for (const d of both) digests[d]!.push(await k.lab.diskDigest(d));

    await Promise.all(both.map((d) => k.lab.writeGuest(d, { offset: 64 * MiB, length: 64 * MiB, pattern: 0x22 })));
    const frozen = both.map((d) => agent.freezeEngineWhen(d, async () => (await k.partialIn(join(k.backupRoot, d))).length > 0));
    for (const d of both) k.backup(host, { domain: d, requestId: `killed-${d}` });
    await Promise.all(frozen);
    await agent.kill9();
    await k.dropPendingCommands(host);

    // With the fix allowed, the chain is repaired in place and continues.
    const killedAt = new Date().toISOString();
    agent = await k.agentFor(host, [fix.name], { VM_ALLOW_BACKUP_CHAIN_FIX: "yes" });
    const repaired = await ev.waitChain(chainOf(fix.name, "checked", undefined, killedAt), 60_000);
    assert.equal(repaired.plan, "repair", repaired.reason);
    assert.match(repaired.reason, /virtnbdbackup\.2/);
    assert.deepEqual(await k.checkpoints(fix.name), ["virtnbdbackup.0", "virtnbdbackup.1"]);
    assert.deepEqual(await k.partialIn(join(k.backupRoot, fix.name)), []);
    k.backup(host, { domain: fix.name, requestId: "fix-next" });
    const next = await ev.waitBackup(outcome("fix-next"));
    assert.equal(next.type === "completed" && next.checkpoint, "virtnbdbackup.2", JSON.stringify(next));
    digests[fix.name]!.push(await k.lab.diskDigest(fix.name));
    await agent.stop();

    // Without it, the chain is archived (cut back to its last complete checkpoint) and a new full starts.
    const restarted = new Date().toISOString();
    agent = await k.agentFor(host, [nofix.name]);
    const archivedEvent = await ev.waitChain(chainOf(nofix.name, "archived", undefined, restarted), 60_000);
    assert.match(archivedEvent.reason, /VM_ALLOW_BACKUP_CHAIN_FIX is off/);
    await ev.waitBackup((e) => completed(nofix.name)(e) && e.at > restarted, 90_000);
    const [archive] = await k.archivesOf(nofix.name);
    assert.ok(archive);
    await agent.stop();

    for (const [i, digest] of digests[fix.name]!.entries()) {
      assert.equal(await k.restoreDigest(join(k.backupRoot, fix.name), `virtnbdbackup.${i}`), digest, `${fix.name} at virtnbdbackup.${i}`);
    }
    for (const [i, digest] of digests[nofix.name]!.entries()) {
      assert.equal(await k.restoreDigest(join(k.backupRoot, archive), `virtnbdbackup.${i}`), digest, `archive ${archive} at virtnbdbackup.${i}`);
    }
    assert.equal(await k.restoreDigest(join(k.backupRoot, nofix.name), "virtnbdbackup.0"), await k.lab.diskDigest(nofix.name), "the new chain");
  });

  it("3: checkpoint deleted out of band, QEMU SIGKILLed → each detected with its reason; next backups good", async () => {
    const host = "cc3";
    const ev = k.events(host);
    const [lost, killed] = [await k.lab.createDomain({ sizeMiB: 128 }), await k.lab.createDomain({ sizeMiB: 128 })];
    const both = [lost.name, killed.name];
    for (const d of both) await k.lab.writeGuest(d, { offset: 0, length: 4 * MiB, pattern: 0x30 });
    const agent = await k.agentFor(host, both, { CHECK_BACKUPS_INTEGRITY: "yes" });
    for (const d of both) await ev.waitBackup(completed(d), 90_000);
    for (const d of both) await k.lab.writeGuest(d, { offset: 8 * MiB, length: 2 * MiB, pattern: 0x31 });
    for (const d of both) k.backup(host, { domain: d, requestId: `inc-${d}` });
    for (const d of both) assert.equal((await ev.waitBackup(outcome(`inc-${d}`))).type, "completed");

    await k.virsh("checkpoint-delete", "--domain", lost.name, "--checkpointname", "virtnbdbackup.1", "--metadata");
    const pid = Number((await readFile(`/run/libvirt/qemu/${killed.name}.pid`, "utf8")).trim());
    process.kill(pid, "SIGKILL");
    await waitFor(async () => (await k.virsh("domstate", "--domain", killed.name)) === "shut off", { timeoutMs: 20_000, what: "QEMU gone" });

    k.nc.publish(subjects.cmd.check(host), JSON.stringify({ requestId: "check-3" }));
    const lostChecked = await ev.waitChain((e) => chainOf(lost.name, "checked")(e) && e.requestId === "check-3", 90_000);
    assert.equal(lostChecked.plan, "new-chain", lostChecked.reason);
    assert.match(lostChecked.reason, /libvirt lists virtnbdbackup\.0 but .*virtnbdbackup\.1/);
    const killedChecked = await ev.waitChain((e) => chainOf(killed.name, "checked")(e) && e.requestId === "check-3", 90_000);
    assert.equal(killedChecked.plan, "new-chain", killedChecked.reason);
    assert.match(killedChecked.reason, /QEMU stopped uncleanly|bitmaps/i);
    for (const d of both) assert.ok(ev.chain.some((e) => chainOf(d, "archived")(e) && e.requestId === "check-3"), `${d} archived`);

    k.nc.publish(subjects.cmd.check(host), "{bad json");
    const rejected = await ev.waitChain((e) => e.type === "failed" && e.domain === undefined, 10_000);
    assert.match(rejected.reason, /not valid JSON/);

    for (const d of both) await k.lab.writeGuest(d, { offset: 32 * MiB, length: 1 * MiB, pattern: 0x32 });
    for (const d of both) k.backup(host, { domain: d, requestId: `next-${d}` });
    for (const d of both) {
      const e = await ev.waitBackup(outcome(`next-${d}`));
      assert.equal(e.type === "completed" && e.checkpoint, "virtnbdbackup.1", JSON.stringify(e));
      assert.equal(await k.restoreDigest(join(k.backupRoot, d), "virtnbdbackup.1"), await k.lab.diskDigest(d), `${d} restores`);
    }

    // CHECK_BACKUPS_INTEGRITY: a truncated data file ends the chain, and the reason names its checkpoint.
    const incFile = join(k.backupRoot, lost.name, "vda.inc.virtnbdbackup.1.data");
    await truncate(incFile, (await stat(incFile)).size - 100);
    const before = (await k.archivesOf(lost.name)).length;
    k.nc.publish(subjects.cmd.check(host), JSON.stringify({ domain: lost.name, requestId: "integrity" }));
    const damaged = await ev.waitChain((e) => chainOf(lost.name, "checked")(e) && e.requestId === "integrity", 90_000);
    assert.equal(damaged.plan, "new-chain", damaged.reason);
    assert.match(damaged.reason, /checkpoint virtnbdbackup\.1 .*damaged.*vda\.inc\.virtnbdbackup\.1\.data.*truncated/);
    assert.equal((await k.archivesOf(lost.name)).length, before + 1, "the damaged chain was archived");
    await agent.stop();
  });
});
