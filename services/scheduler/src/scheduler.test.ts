import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { connectBus, ensureStreams, openHostsBucket, type NatsConnection } from "@vmbs/bus";
import { startNatsServer, type RunningNatsServer } from "@vmbs/nats-server";
import { subjects, type HostInventory } from "@vmbs/contracts";
import { createLogger } from "@vmbs/logger";
import { openPolicySource } from "@vmbs/config";
import { createSlotPublisher } from "./slot-publisher.js";
import { startScheduler } from "./scheduler.js";

const inventory = (host: string, domains: string[]): HostInventory => ({
  host,
  hostname: host,
  agentVersion: "test",
  heartbeatAt: new Date().toISOString(),
  domains: domains.map((name) => ({ name, state: "running", scheduled: true })),
});

describe("scheduler on a real nats-server", () => {
  let dir: string;
  let server: RunningNatsServer;
  let nc: NatsConnection;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "vmbs-scheduler-"));
    server = await startNatsServer({ storeDir: join(dir, "store") });
    nc = await connectBus(server.url, "scheduler-test");
    await ensureStreams(nc);
  });
  after(async () => {
    await nc?.close();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("trusts a host entry for its key only: an entry under key hva naming host hvb commands nobody: logged, counted, the other hosts still scheduled", async () => {
    const hosts = await openHostsBucket(nc);
    // What agent hva may write (its own key), pretending to be hvb with 300 domains.
    const spoofed = Array.from({ length: 300 }, (_, i) => `vm-${i}`);
    await hosts.put("hva", JSON.stringify(inventory("hvb", spoofed)));
    await hosts.put("hvb", JSON.stringify(inventory("hvb", ["db"])));
    await hosts.put("hvc", JSON.stringify(inventory("hvc", ["web"])));

    const lines: { msg: string; key?: string; reason?: string }[] = [];
    const logger = createLogger({ name: "test", level: "debug", stream: new Writable({ write: (c: Buffer, _e, cb) => (lines.push(JSON.parse(c.toString())), cb()) }) });
    const scheduler = createSlotPublisher({ nc, logger });
    // A callback runs as each publish is read, before the ack that ends the publish: counted by the time fireSlot ends.
    const published = new Map<string, number>();
    const sub = nc.subscribe(subjects.commandsAll, { callback: (_e, m) => void published.set(m.subject, (published.get(m.subject) ?? 0) + 1) });
    const slot = new Date("2026-11-26T03:00:00Z");
    assert.deepEqual(await scheduler.fireSlot(slot), { published: 2, duplicates: 0, failed: 1 });
    assert.deepEqual(await scheduler.fireDrillSlot(slot), { published: 2, duplicates: 0, failed: 1 });
    sub.unsubscribe();
    assert.deepEqual(Object.fromEntries(published), { "vmbs.cmd.backup.hvb": 1, "vmbs.cmd.backup.hvc": 1, "vmbs.cmd.drill.hvb": 1, "vmbs.cmd.drill.hvc": 1 });
    const refused = lines.filter((l) => l.msg === "ignoring a malformed host entry");
    assert.deepEqual(refused.map((l) => [l.key, l.reason]), [
      ["hva", "the entry of key hva names host hvb"],
      ["hva", "the entry of key hva names host hvb"],
    ]);
  });

  it("gives each domain the slots of its own schedule (VMBS_POLICY_FILE), and a changed file changes them while it runs", async () => {
    const hosts = await openHostsBucket(nc);
    await hosts.put("hvp", JSON.stringify(inventory("hvp", ["db1", "web1"])));
    const policyFile = join(dir, "policy.yaml");
    await writeFile(policyFile, 'domains:\n  - match: "db*"\n    schedule: "* * * * * *"\n');
    const seen: string[] = [];
    const sub = nc.subscribe(subjects.cmd.backup("hvp"), { callback: (_e, m) => void seen.push((m.json() as { domain: string }).domain) });
    const silent = createLogger({ name: "test", level: "silent" });
    // BACKUP_SCHEDULE yearly: only the policy's every-second schedule can fire within the test.
    const policies = await openPolicySource({ path: policyFile });
    const scheduler = await startScheduler({ nc, schedule: "@yearly", policies, logger: silent });
    try {
      await new Promise((r) => setTimeout(r, 2_500));
      assert.ok(seen.includes("db1"), `db1 was published at its every-second slots: ${seen.join(",")}`);
      assert.ok(!seen.includes("web1"), "web1 keeps the yearly BACKUP_SCHEDULE");

      await writeFile(policyFile, 'domains:\n  - match: "web*"\n    schedule: "* * * * * *"\n');
      const deadline = Date.now() + 8_000;
      while (!seen.includes("web1") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.ok(seen.includes("web1"), "the re-read file gave web1 its own schedule");
      const dbBefore = seen.filter((d) => d === "db1").length;
      await new Promise((r) => setTimeout(r, 2_000));
      assert.equal(seen.filter((d) => d === "db1").length, dbBefore, "db1 is back on the yearly schedule");
    } finally {
      sub.unsubscribe();
      await scheduler.stop();
      policies.close();
    }
  });
});
