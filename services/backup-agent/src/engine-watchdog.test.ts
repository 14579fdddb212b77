import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { createAgentHarness, enginePids, stopEngineMidTransfer, waitFor, type AgentHarness } from "@vmbs/lab";
import type { BackupEvent } from "@vmbs/contracts";

const MiB = 1024 * 1024;
/** Short for the test, yet long enough that the other backups of this agent never look stalled on a busy machine. */
const STALL_S = 8;
const byRequest = (requestId: string) => (e: BackupEvent) => e.requestId === requestId && e.type !== "started";

describe("engine watchdog and hostile domain names (real lab)", () => {
  let h: AgentHarness;
  before(async () => {
    h = await createAgentHarness("wdhost");
    await h.startAgent({ VMBS_ENGINE_STALL_TIMEOUT: String(STALL_S) });
  });
  after(async () => h?.close());

  it("cancels a stopped engine after VMBS_ENGINE_STALL_TIMEOUT, ends its libvirt job, and the next backup succeeds", async () => {
    const dom = await h.lab.createDomain({ sizeMiB: 1024 });
    await h.lab.writeGuest(dom.name, { offset: 0, length: 768 * MiB, pattern: 0x3c });
    const folder = join(h.backupRoot, dom.name);
    h.publishRaw(JSON.stringify({ domain: dom.name, requestId: "stall" }));

    // Stop the engine while it copies data: the backup job runs and its data file is being written.
    await stopEngineMidTransfer(folder, dom.name);
    const jobWhileStopped = await execa("virsh", ["-c", h.lab.uri, "domjobinfo", "--domain", dom.name], { timeout: 30_000 });
    assert.match(jobWhileStopped.stdout, /Backup/, "the libvirt backup job was running when the engine stopped");

    const failed = await h.waitEvent(byRequest("stall"), 120_000);
    assert.equal(failed.type, "failed", JSON.stringify(failed));
    assert.match(failed.type === "failed" ? failed.reason : "", new RegExp(`no progress for ${STALL_S} s`));

    await waitFor(async () => (await enginePids(dom.name)).length === 0, { timeoutMs: 30_000, what: "the engine process to be gone" });
    const job = await execa("virsh", ["-c", h.lab.uri, "domjobinfo", "--domain", dom.name], { timeout: 30_000 });
    assert.doesNotMatch(job.stdout, /Backup/, `a libvirt job is left: ${job.stdout}`);

    h.publishRaw(JSON.stringify({ domain: dom.name, requestId: "after-stall" }));
    const next = await h.waitEvent(byRequest("after-stall"), 300_000);
    assert.equal(next.type, "completed", JSON.stringify(next));
  });

  it("a domain named like an option (leading dash, '=', quotes, spaces) reaches the engine intact", async () => {
    // libvirt refuses '/' in names; everything else an option parser could trip on is here.
    const name = `-${h.lab.domainPrefix}${Date.now().toString(16)} --level=copy a=b 'q"`;
    const dom = await h.lab.createDomain({ name });
    assert.equal(dom.name, name);
    h.publishRaw(JSON.stringify({ domain: name, requestId: "dash" }));
    const full = await h.waitEvent(byRequest("dash"));
    assert.equal(full.type, "completed", JSON.stringify(full));
    const files = await readdir(join(h.backupRoot, name));
    assert.ok(files.includes("vda.full.data") && files.includes(`${name}.cpt`), files.join(", "));
    assert.equal(full.type === "completed" && full.checkpoint, "virtnbdbackup.0", "a full with a checkpoint, not a copy");
  });
});
