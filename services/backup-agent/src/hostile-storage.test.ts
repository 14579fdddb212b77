import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { backupRootMarker } from "@vmbs/contracts";
import { createAgentHarness, imageDigest, recordEvents, restoreChain, type AgentHarness, type EventLog } from "@vmbs/lab";

const MiB = 1024 * 1024;

/* Standards: a missing backup path and a full disk give clear errors and lose nothing (issue 7 point 5). */
describe("backup agent on hostile storage", () => {
  let h: AgentHarness;
  let ev: EventLog;
  let small: string;
  before(async () => {
    h = await createAgentHarness("fullhost");
    ev = recordEvents(h.nc, h.host);
    small = join(h.backupRoot, "small");
    await mkdir(small);
    // A 24 MiB file system: room for a first chain, not for what comes after (0755: a world-writable root is refused).
    await execa("mount", ["-t", "tmpfs", "-o", "size=24m,mode=0755", "tmpfs", small]);
  });
  after(async () => {
    ev?.stop();
    // Lazy unmount first, so the lab can remove its folder even if the agent still holds a file there.
    await execa("umount", ["-l", small], { reject: false });
    await h?.close();
  });

  it("refuses to start without its backup path, naming it", async () => {
    await assert.rejects(h.startAgent({ LOCAL_BACKUP_PATH: join(h.backupRoot, "not-mounted") }), /LOCAL_BACKUP_PATH .*not-mounted does not exist/);
  });

  it("a full disk does not end the chain: the partial checkpoint is dropped, no archive, no new full, attention; with room again the chain continues and restores", async () => {
    await h.startAgent({ LOCAL_BACKUP_PATH: small });
    const dom = await h.lab.createDomain({ sizeMiB: 128 });
    const folder = join(small, dom.name);
    await h.lab.writeGuest(dom.name, { offset: 0, length: 4 * MiB, pattern: 0x61 });
    h.publishRaw(JSON.stringify({ domain: dom.name, requestId: "fits" }));
    const first = await h.waitEvent((e) => e.requestId === "fits" && e.type !== "started");
    assert.equal(first.type, "completed", JSON.stringify(first));
    const fullBefore = await readFile(join(folder, "vda.full.data"));

    await h.lab.writeGuest(dom.name, { offset: 8 * MiB, length: 64 * MiB, pattern: 0x62 });
    h.publishRaw(JSON.stringify({ domain: dom.name, requestId: "too-big" }));
    const failed = await h.waitEvent((e) => e.requestId === "too-big" && e.type !== "started");
    assert.equal(failed.type, "failed", JSON.stringify(failed));
    assert.match(failed.type === "failed" ? failed.reason : "", /space|Errno 28/i);
    const attention = await ev.waitChain((e) => e.requestId === "too-big" && e.type === "attention", 60_000);
    assert.match(attention.reason, /^backup disk full: free space .* MiB of .* MiB on .*small, the chain is kept/);
    const checked = await ev.waitChain((e) => e.requestId === "too-big" && e.type === "checked", 60_000);
    assert.equal(checked.plan, "repair", checked.reason);
    assert.match(checked.reason, /virtnbdbackup\.1/);

    // Only this domain's folders count: on a shared lab host the agent may adopt a domain created meanwhile.
    assert.deepEqual((await readdir(small)).filter((n) => n.startsWith(dom.name)), [dom.name], "no archive was made");
    assert.ok((await readdir(small)).includes(backupRootMarker));
    assert.ok(fullBefore.equals(await readFile(join(folder, "vda.full.data"))), "the full backup is untouched");
    assert.equal(await readFile(join(folder, `${dom.name}.cpt`), "utf8"), '["virtnbdbackup.0"]', ".cpt cut back to the full");
    assert.deepEqual((await readdir(folder)).filter((f) => f.includes("virtnbdbackup.1")), [], "the partial checkpoint's files are gone");
    const virsh = await execa("virsh", ["-q", "-c", h.lab.uri, "checkpoint-list", "--domain", dom.name, "--name"]);
    assert.deepEqual(virsh.stdout.split("\n").map((l) => l.trim()).filter(Boolean), ["virtnbdbackup.0"], "libvirt dropped the partial checkpoint");
    const starts = h.events.filter((e) => e.domain === dom.name && e.type === "started");
    assert.deepEqual(starts.map((e) => e.requestId), ["fits", "too-big"], "no full was started on the full disk");
    const chainEnds = ev.chain.filter((e) => e.domain === dom.name && (e.type === "archived" || /delete-folder|start-new-chain/.test(e.step ?? "")));
    assert.deepEqual(chainEnds, [], "the chain was neither archived nor deleted");

    // Room again: the next incremental continues the same chain, and the chain restores to the live disk.
    await execa("mount", ["-o", "remount,size=256m", small]);
    h.publishRaw(JSON.stringify({ domain: dom.name, requestId: "room-again" }));
    const next = await h.waitEvent((e) => e.requestId === "room-again" && e.type !== "started");
    assert.equal(next.type === "completed" && next.checkpoint, "virtnbdbackup.1", JSON.stringify(next));
    assert.ok(next.type === "completed" && next.level === "inc", "an incremental, not a new full");
    const restored = await restoreChain(folder, await h.lab.tempDir("restore-"), { until: "virtnbdbackup.1" });
    assert.equal(await imageDigest(restored), await h.lab.diskDigest(dom.name), "the kept chain restores the disk");
  });
});
