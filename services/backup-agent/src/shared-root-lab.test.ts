import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { publishJson } from "@vmbs/bus";
import { backupRootMarker, subjects } from "@vmbs/contracts";
import { createAgentHarness, imageDigest, recordEvents, restoreChain, type AgentHarness, type EventLog } from "@vmbs/lab";

/*
 * Issue 7 point 4 (first half): one writer per chain FOLDER. Two agents with different HOST_IDs — two hosts
 * with a same-named VM — share one backup root, so `<root>/<domain>` is one folder for both. Their leases are
 * keyed on the root's id and the domain, so commands arriving at the same moment run one after the other.
 */
describe("two hosts sharing one backup root (real lab)", { timeout: 600_000 }, () => {
  let h: AgentHarness;
  let evA: EventLog;
  let evB: EventLog;
  before(async () => {
    h = await createAgentHarness("sharea");
    evA = recordEvents(h.nc, "sharea");
    evB = recordEvents(h.nc, "shareb");
  });
  after(async () => {
    evA?.stop();
    evB?.stop();
    await h?.close();
  });

  it("backups of the same domain from two hosts at the same time are serialised into one chain that restores", async () => {
    await h.startAgent();
    await h.startAgent({ HOST_ID: "shareb" });
    assert.deepEqual(JSON.parse(await readFile(join(h.backupRoot, backupRootMarker), "utf8")), { id: "sharea" }, "the first agent named the root");
    const MiB = 1024 * 1024;
    const dom = await h.lab.createDomain({ sizeMiB: 256 });
    await h.lab.writeGuest(dom.name, { offset: 0, length: 96 * MiB, pattern: 0x5a });

    await Promise.all([
      publishJson(h.nc, subjects.cmd.backup("sharea"), { domain: dom.name, requestId: "from-a" }),
      publishJson(h.nc, subjects.cmd.backup("shareb"), { domain: dom.name, requestId: "from-b" }),
    ]);
    const a = await evA.waitBackup((e) => e.requestId === "from-a" && e.type !== "started", 300_000);
    const b = await evB.waitBackup((e) => e.requestId === "from-b" && e.type !== "started", 300_000);
    assert.equal(a.type, "completed", JSON.stringify(a));
    assert.equal(b.type, "completed", JSON.stringify(b));
    const startA = evA.backup.find((e) => e.requestId === "from-a" && e.type === "started")!;
    const startB = evB.backup.find((e) => e.requestId === "from-b" && e.type === "started")!;
    const [first, second, secondStart] = startA.at < startB.at ? [a, b, startB] : [b, a, startA];
    assert.ok(secondStart.at >= first.at, `the second run (started ${secondStart.at}) waited for the first (done ${first.at})`);
    assert.equal(first.type === "completed" && first.checkpoint, "virtnbdbackup.0");
    assert.equal(second.type === "completed" && second.checkpoint, "virtnbdbackup.1", "the second continued the first's chain");

    const folder = join(h.backupRoot, dom.name);
    assert.equal(await readFile(join(folder, `${dom.name}.cpt`), "utf8"), '["virtnbdbackup.0", "virtnbdbackup.1"]', "exactly two checkpoints");
    const listed = (await execa("virsh", ["-q", "-c", h.lab.uri, "checkpoint-list", "--domain", dom.name, "--name", "--topological"])).stdout;
    assert.deepEqual(listed.split("\n").map((l) => l.trim()).filter(Boolean), ["virtnbdbackup.0", "virtnbdbackup.1"]);
    const restored = await restoreChain(folder, await h.lab.tempDir("restore-"), { until: "virtnbdbackup.1" });
    assert.equal(await imageDigest(restored), await h.lab.diskDigest(dom.name), "a stock virtnbdrestore of the chain matches the disk");
  });
});
