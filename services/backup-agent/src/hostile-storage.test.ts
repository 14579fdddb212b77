import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { createAgentHarness, type AgentHarness } from "./testing/agent-harness.js";

const MiB = 1024 * 1024;

/* Standards: a missing backup path and a full disk give clear errors and lose nothing. */
describe("backup agent on hostile storage", () => {
  let h: AgentHarness;
  let small: string;
  before(async () => {
    h = await createAgentHarness("fullhost");
    small = join(h.backupRoot, "small");
    await mkdir(small);
    // A 24 MiB file system: room for a first chain, not for what comes after.
    await execa("mount", ["-t", "tmpfs", "-o", "size=24m", "tmpfs", small]);
  });
  after(async () => {
    // Lazy unmount first, so the lab can remove its folder even if the agent still holds a file there.
    await execa("umount", ["-l", small], { reject: false });
    await h?.close();
  });

  it("refuses to start without its backup path, naming it", async () => {
    await assert.rejects(h.startAgent({ LOCAL_BACKUP_PATH: join(h.backupRoot, "not-mounted") }), /LOCAL_BACKUP_PATH .*not-mounted does not exist/);
  });

  it("reports a full disk as a failed backup with the engine's reason and keeps the earlier checkpoints", async () => {
    await h.startAgent({ LOCAL_BACKUP_PATH: small });
    const dom = await h.lab.createDomain({ sizeMiB: 128 });
    await h.lab.writeGuest(dom.name, { offset: 0, length: 4 * MiB, pattern: 0x61 });
    h.publishRaw(JSON.stringify({ domain: dom.name, requestId: "fits" }));
    const first = await h.waitEvent((e) => e.requestId === "fits" && e.type !== "started");
    assert.equal(first.type, "completed", JSON.stringify(first));
    const fullData = (await readdir(join(small, dom.name))).filter((f) => f.endsWith(".full.data"));

    await h.lab.writeGuest(dom.name, { offset: 8 * MiB, length: 64 * MiB, pattern: 0x62 });
    h.publishRaw(JSON.stringify({ domain: dom.name, requestId: "too-big" }));
    const failed = await h.waitEvent((e) => e.requestId === "too-big" && e.type !== "started");
    assert.equal(failed.type, "failed", JSON.stringify(failed));
    assert.match(failed.type === "failed" ? failed.reason : "", /space|Errno 28|write/i);
    // Whatever the chain check made of it afterwards, the first full backup is still there (kept or archived).
    await new Promise((r) => setTimeout(r, 3000));
    const found = (await execa("find", [small, "-name", "vda.full.data"])).stdout.split("\n").filter(Boolean);
    assert.equal(fullData.length, 1);
    assert.ok(found.length >= 1, "the earlier full backup was not deleted");
  });
});
