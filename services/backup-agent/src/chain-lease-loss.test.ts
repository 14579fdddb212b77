import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { chainLeaseKey, createChainLeases } from "@vmbs/bus";
import { backupRootId } from "@vmbs/chain";
import { buckets } from "@vmbs/contracts";
import { completed, createChainTestKit, MiB, outcome, waitFor, type ChainTestKit } from "@vmbs/lab";

/*
 * One writer per chain, when the writer loses its lease: a backup whose chain lease is taken away (or cannot be
 * renewed for a whole TTL) must stop writing to that chain at once, not run on beside the new holder.
 */

describe("a backup that loses its chain lease (real lab)", { timeout: 300_000 }, () => {
  let k: ChainTestKit;
  before(async () => {
    k = await createChainTestKit();
    // The bucket's TTL is fixed by whoever creates it; the agent reads it back and renews every TTL/3 (1 s here).
    await createChainLeases(k.nc, { holder: "test", ttlMs: 3000 });
  });
  after(async () => k?.close());

  it("is cancelled with the reason, leaves no libvirt job, and the next backup continues a sound chain", async () => {
    const host = "lease1";
    const ev = k.events(host);
    const dom = await k.lab.createDomain({ sizeMiB: 256 });
    const agent = await k.agentFor(host, [dom.name]);
    await ev.waitBackup(completed(dom.name), 60_000); // the startup check starts the chain
    await k.lab.writeGuest(dom.name, { offset: 0, length: 64 * MiB, pattern: 0x6c });

    // The engine is held mid-transfer (the agent's cancel wakes it with SIGCONT before its SIGINT).
    const frozen = agent.freezeEngineWhen(dom.name, async () => (await k.partialIn(join(k.backupRoot, dom.name))).length > 0);
    k.backup(host, { domain: dom.name, requestId: "stolen" });
    await frozen;
    await ev.waitBackup((e) => e.requestId === "stolen" && e.type === "started");
    // Another process takes the key, as a second agent would after our renewals failed for a whole TTL.
    const kv = await new Kvm(k.nc).open(buckets.chainLeases);
    // Leases are keyed on the chain folder: the root's id (written by the first agent) and the domain.
    const key = chainLeaseKey(await backupRootId(k.backupRoot, host), dom.name);
    await kv.put(key, JSON.stringify({ holder: "test-thief", op: "test", since: new Date().toISOString() }));

    const failed = await ev.waitBackup(outcome("stolen"), 60_000);
    assert.equal(failed.type, "failed", JSON.stringify(failed));
    assert.match(failed.type === "failed" ? failed.reason : "", /backup cancelled: chain lease .* lost: the key changed/);
    await waitFor(async () => (await k.jobType(dom.name)) === "None", { timeoutMs: 30_000, what: "no libvirt job left" });

    // The thief leaves; the next backup repairs what the cancelled one left and restores to the live disk.
    await kv.delete(key);
    k.backup(host, { domain: dom.name, requestId: "after" });
    const next = await ev.waitBackup(outcome("after"), 120_000);
    assert.equal(next.type, "completed", JSON.stringify(next));
    const checkpoint = next.type === "completed" ? next.checkpoint : "";
    assert.equal(await k.restoreDigest(join(k.backupRoot, dom.name), checkpoint), await k.lab.diskDigest(dom.name));
  });
});
