import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { DiscardPolicy, jetstreamManager } from "@nats-io/jetstream";
import { connectBus, ensureStreams, openHostsBucket } from "@vmbs/bus";
import { createAgentHarness, startTestNats, waitFor, type AgentHarness } from "@vmbs/lab";
import { createSlotPublisher, slotMessageId, startScheduler } from "@vmbs/scheduler";
import { createLogger } from "@vmbs/logger";
import { streams, subjects, type HostInventory } from "@vmbs/contracts";

const silent = createLogger({ name: "test", level: "silent", stream: new Writable({ write: (_c, _e, cb) => cb() }) });

describe("scheduler", () => {
  let h: AgentHarness;
  before(async () => {
    h = await createAgentHarness("sched1");
  });
  after(async () => h?.close());
  it("derives one message id per (host, domain, slot)", () => {
    const slot = new Date("2026-11-26T03:00:00.250Z");
    assert.equal(slotMessageId("hv1", "win 11", slot), slotMessageId("hv1", "win 11", new Date("2026-11-26T03:00:00Z")));
    assert.notEqual(slotMessageId("hv1", "win 11", slot), slotMessageId("hv2", "win 11", slot));
    assert.notEqual(slotMessageId("hv1", "win 11", slot), slotMessageId("hv1", "win 12", slot));
    assert.notEqual(slotMessageId("hv1", "win 11", slot), slotMessageId("hv1", "win 11", new Date("2026-11-26T03:01:00Z")));
  });

  it("two scheduler replicas firing the same slot cause exactly one backup per domain", async () => {
    const { nc, events } = h;
    // The harness ignores every domain that exists when the agent starts: create ours afterwards.
    const agent = await h.startAgent();
    const dom = await h.lab.createDomain();
    try {
      const hosts = await openHostsBucket(nc);
      await waitFor(async () => (await hosts.get("sched1"))?.string().includes(JSON.stringify(dom.name)), {
        timeoutMs: 15_000,
        what: "the agent's heartbeat to register the new domain",
      });
      const replicas = [1, 2].map(() => createSlotPublisher({ nc, logger: silent }));
      const slot = new Date("2026-11-26T03:00:00Z");
      const results = await Promise.all(replicas.map((r) => r.fireSlot(slot)));
      assert.equal(results.reduce((n, r) => n + r.published, 0), 1, "one replica stored the command");
      assert.equal(results.reduce((n, r) => n + r.duplicates, 0), 1, "the other one was a duplicate");
      const requestId = `schedule:${slot.toISOString()}`;
      await waitFor(() => events.some((e) => e.requestId === requestId && e.type === "completed" && e.domain === dom.name), {
        timeoutMs: 60_000,
        what: "the scheduled backup",
      });
      await new Promise((r) => setTimeout(r, 2000));
      const runs = events.filter((e) => e.requestId === requestId && e.type === "started");
      assert.equal(runs.length, 1, "exactly one backup ran for the slot");
    } finally {
      await agent.stop();
    }
  });

  it("fires on its cron schedule and publishes a command for each scheduled domain", async () => {
    const { nc } = h;
    const jsm = await jetstreamManager(nc);
    // The previous test's agent registered host sched1; its entry outlives the agent until the TTL.
    const before = (await jsm.streams.info(streams.commands)).state.last_seq;
    const scheduler = await startScheduler({ nc, schedule: "* * * * * *", logger: silent });
    try {
      const stored = await waitFor(
        async () => {
          const info = await jsm.streams.info(streams.commands);
          return info.state.last_seq > before ? info : undefined;
        },
        { timeoutMs: 5_000, what: "a command published by the cron" },
      );
      assert.ok(stored.state.last_seq > before);
    } finally {
      await scheduler.stop();
    }
  });
});

describe("scheduler slot with a broken host entry and a failing publish", () => {
  it("publishes every other host's commands, logs each failure and counts it", async () => {
    const nats = await startTestNats();
    const nc = await connectBus(nats.url, "test");
    try {
      await ensureStreams(nc);
      const jsm = await jetstreamManager(nc);
      // One command per subject (one scheduled domain per host here), refused beyond that: host "full" already has one waiting, so its publish fails.
      const info = await jsm.streams.info(streams.commands);
      await jsm.streams.update(streams.commands, { ...info.config, max_msgs_per_subject: 1, discard: DiscardPolicy.New, discard_new_per_subject: true });
      await nc.request(subjects.cmd.backup("full"), JSON.stringify({ domain: "earlier" }));
      const hosts = await openHostsBucket(nc);
      const inventory = (host: string, domains: [string, boolean][]): HostInventory => ({
        host,
        hostname: host,
        agentVersion: "test",
        heartbeatAt: new Date().toISOString(),
        domains: domains.map(([name, scheduled]) => ({ name, state: "running", scheduled })),
      });
      await hosts.put("aaa-notjson", "{not json");
      await hosts.put("bad-shape", JSON.stringify({ host: "x" }));
      await hosts.put("bad-host", JSON.stringify(inventory("bad.host", [["vm", true]])));
      await hosts.put("full", JSON.stringify(inventory("full", [["vm", true]])));
      await hosts.put("hv1", JSON.stringify(inventory("hv1", [["win 11", true], ["ignored", false]])));
      await hosts.put("hv2", JSON.stringify(inventory("hv2", [["db", true]])));
      await hosts.put("hv3", JSON.stringify(inventory("hv3", [["web", true]])));

      const lines: { level: number; msg: string; key?: string; host?: string; err?: { message: string } }[] = [];
      const logger = createLogger({
        name: "test",
        level: "debug",
        stream: new Writable({ write: (c: Buffer, _e, cb) => (lines.push(JSON.parse(c.toString())), cb()) }),
      });
      const scheduler = createSlotPublisher({ nc, logger });
      const result = await scheduler.fireSlot(new Date("2026-11-26T03:00:00Z"));
      assert.deepEqual(result, { published: 3, duplicates: 0, failed: 4 });

      const commands = await jsm.streams.info(streams.commands, { subjects_filter: ">" });
      assert.deepEqual(commands.state.subjects, { "vmbs.cmd.backup.full": 1, "vmbs.cmd.backup.hv1": 1, "vmbs.cmd.backup.hv2": 1, "vmbs.cmd.backup.hv3": 1 });
      const malformed = lines.filter((l) => l.msg === "ignoring a malformed host entry").map((l) => l.key);
      assert.deepEqual(malformed.sort(), ["aaa-notjson", "bad-host", "bad-shape"]);
      const unpublished = lines.filter((l) => l.msg === "could not publish a scheduled backup");
      assert.equal(unpublished.length, 1);
      assert.equal(unpublished[0]!.host, "full");
      assert.match(unpublished[0]!.err?.message ?? "", /maximum messages per subject/i);
      const summary = lines.find((l) => l.msg === "scheduled backups published");
      assert.ok(summary && summary.level === 40, "the slot's summary is a warning when something failed");

      const again = await scheduler.fireSlot(new Date("2026-11-26T03:00:00Z"));
      assert.deepEqual(again, { published: 0, duplicates: 3, failed: 4 }, "a replica firing the same slot stores nothing twice");
    } finally {
      await nc.close();
      await nats.stop();
    }
  });
});

describe("scheduler: DRILL_SCHEDULE", () => {
  it("publishes one drill command per registered host and slot, whichever replica fires it, and fires on its cron", async () => {
    const nats = await startTestNats();
    const nc = await connectBus(nats.url, "test");
    try {
      await ensureStreams(nc);
      const jsm = await jetstreamManager(nc);
      const hosts = await openHostsBucket(nc);
      for (const host of ["hv1", "hv2"])
        await hosts.put(host, JSON.stringify({ host, hostname: host, agentVersion: "test", heartbeatAt: new Date().toISOString(), domains: [{ name: "vm", state: "running", scheduled: true }] } satisfies HostInventory));
      const replicas = [1, 2].map(() => createSlotPublisher({ nc, logger: silent }));
      const slot = new Date("2026-11-29T04:00:00Z");
      const results = await Promise.all(replicas.map((r) => r.fireDrillSlot(slot)));
      assert.deepEqual([results.reduce((n, r) => n + r.published, 0), results.reduce((n, r) => n + r.duplicates, 0)], [2, 2]);
      const stored = await jsm.streams.info(streams.commands, { subjects_filter: ">" });
      assert.deepEqual(stored.state.subjects, { "vmbs.cmd.drill.hv1": 1, "vmbs.cmd.drill.hv2": 1 }, "drills only, no backup");
      const first = await jsm.streams.getMessage(streams.commands, { last_by_subj: subjects.cmd.drill("hv1") });
      assert.deepEqual(first?.json(), { requestId: `drill-schedule:${slot.toISOString()}` });

      const cron = await startScheduler({ nc, schedule: "@yearly", drillSchedule: "* * * * * *", logger: silent });
      try {
        await waitFor(async () => ((await jsm.streams.info(streams.commands)).state.messages > 2 ? true : undefined), { timeoutMs: 5_000, what: "a drill command published by the cron" });
      } finally {
        await cron.stop();
      }
    } finally {
      await nc.close();
      await nats.stop();
    }
  });
});
