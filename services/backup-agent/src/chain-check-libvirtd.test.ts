import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { execa } from "execa";
import { chainOf, completed, createChainTestKit, MiB, outcome, waitFor, type ChainTestKit } from "@vmbs/lab";

// test lane: exclusive (restarts libvirtd under every other lab file; scripts/test.sh runs it alone)

/*
 * libvirtd restarted in the middle of a backup. It disturbs every other VM and test on the host, so it only
 * runs when asked for (VMBS_TEST_RESTART_LIBVIRTD=1).
 */

const skip = process.env.VMBS_TEST_RESTART_LIBVIRTD !== "1" && "set VMBS_TEST_RESTART_LIBVIRTD=1 (restarts the host's libvirtd)";

describe("self-healing chains: libvirtd restart (issue 3 acceptance 3)", { timeout: 600_000, skip }, () => {
  let k: ChainTestKit;
  before(async () => {
    k = await createChainTestKit();
  });
  afterEach(async () => k.stopAgents());
  after(async () => k?.close());

  it("3b: libvirtd restarted mid-backup → the failed run is followed by a strict check, the next backup is good", async () => {
    const host = "cc4";
    const ev = k.events(host);
    const dom = await k.lab.createDomain({ sizeMiB: 1024 });
    await k.lab.writeGuest(dom.name, { offset: 0, length: 4 * MiB, pattern: 0x40 });
    const agent = await k.agentFor(host, [dom.name]);
    await ev.waitBackup(completed(dom.name), 90_000);
    await k.lab.writeGuest(dom.name, { offset: 16 * MiB, length: 512 * MiB, pattern: 0x41 });
    k.backup(host, { domain: dom.name, requestId: "cut" });
    await ev.waitBackup((e) => e.requestId === "cut" && e.type === "started", 60_000);
    await waitFor(async () => (await k.partialIn(join(k.backupRoot, dom.name))).length > 0, { timeoutMs: 15_000, what: "the transfer" });
    const pid = Number((await execa("pidof", ["-s", "libvirtd"])).stdout.trim());
    process.kill(pid, "SIGTERM");
    await waitFor(async () => (await execa("kill", ["-0", String(pid)], { reject: false })).exitCode !== 0, { timeoutMs: 30_000, what: "libvirtd to exit" });
    await execa("libvirtd", ["-d"], { stdio: "ignore" });
    await waitFor(async () => (await execa("virsh", ["-c", k.lab.uri, "list"], { reject: false })).exitCode === 0, { timeoutMs: 30_000, what: "libvirtd back" });

    const cut = await ev.waitBackup(outcome("cut"));
    if (cut.type === "failed") {
      const checked = await ev.waitChain((e) => chainOf(dom.name, "checked")(e) && e.trigger === "after-failure", 120_000);
      assert.ok(checked.reason.length > 20, "the check says why");
    }
    k.backup(host, { domain: dom.name, requestId: "after-restart" });
    const next = await ev.waitBackup(outcome("after-restart"), 180_000);
    assert.equal(next.type, "completed", JSON.stringify(next));
    assert.equal(await k.restoreDigest(join(k.backupRoot, dom.name), next.type === "completed" ? next.checkpoint : ""), await k.lab.diskDigest(dom.name));
    await agent.stop();
  });
});
