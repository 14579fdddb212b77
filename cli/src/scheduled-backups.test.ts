import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { jetstreamManager } from "@nats-io/jetstream";
import { openHostsBucket } from "@vmbs/bus";
import { createAgentHarness, type AgentHarness } from "@vmbs/backup-agent/testing";
import { createScheduler, slotMessageId } from "@vmbs/scheduler";
import { createLogger } from "@vmbs/logger";
import { streams } from "@vmbs/contracts";
import { waitFor } from "@vmbs/lab";

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
      const replicas = [1, 2].map(() => createScheduler({ nc, hosts, schedule: "@daily", logger: silent }));
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
    const hosts = await openHostsBucket(nc);
    // The previous test's agent registered host sched1; its entry outlives the agent until the TTL.
    const before = (await jsm.streams.info(streams.commands)).state.last_seq;
    const scheduler = createScheduler({ nc, hosts, schedule: "* * * * * *", logger: silent });
    scheduler.start();
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
