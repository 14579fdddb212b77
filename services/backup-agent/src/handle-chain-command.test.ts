import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { agentDurable, connectBus, consumeDurable, ensureStreams, publishJson, type ChainEventInput, type DurableConsumer, type NatsConnection } from "@vmbs/bus";
import { subjects } from "@vmbs/contracts";
import { startTestNats, waitFor, type TestNats } from "@vmbs/lab";
import { createLogger } from "@vmbs/logger";
import { createChainCommandHandler } from "./handle-chain-command.js";

/* A chain command's `dryRun` on real NATS: the verb's dry run runs instead of its work, and a verb without one refuses it. */

describe("chain command handler: dry runs (real NATS)", () => {
  let nats: TestNats;
  let nc: NatsConnection;
  before(async () => {
    nats = await startTestNats();
    nc = await connectBus(nats.url, "test");
    await ensureStreams(nc);
  });
  after(async () => {
    await nc?.close();
    await nats?.stop();
  });

  it("runs the dry run of retention, never its work; refuses a dry run of rotate and rotates nothing", async () => {
    const done: string[] = [];
    const events: ChainEventInput[] = [];
    const consumers: DurableConsumer[] = [];
    const serve = async (verb: "retention" | "rotate", withPlan: boolean) =>
      consumers.push(
        await consumeDurable(nc, {
          ...agentDurable(verb, "h1"),
          handler: createChainCommandHandler({
            verb,
            runForDomain: async (domain, requestId) => void done.push(`${verb} ${domain} ${requestId}`),
            ...(withPlan ? { planForDomain: async (domain: string, requestId: string | undefined) => void done.push(`plan ${verb} ${domain} ${requestId}`) } : {}),
            publish: async (e) => void events.push(e),
            runExclusive: (_domain, run) => run(new AbortController().signal),
            scheduledDomains: async () => ["web", "db"],
            logger: createLogger({ name: "test", level: "silent" }),
          }),
        }),
      );
    await serve("retention", true);
    await serve("rotate", false);
    try {
      await publishJson(nc, subjects.cmd.retention("h1"), { dryRun: true, requestId: "dry-all" });
      await publishJson(nc, subjects.cmd.retention("h1"), { domain: "web", requestId: "real" });
      await publishJson(nc, subjects.cmd.rotate("h1"), { domain: "web", dryRun: true, requestId: "dry-rotate" });
      await waitFor(() => (done.length >= 3 && events.length >= 1) || undefined, { timeoutMs: 10_000, what: "the three commands handled" });
      assert.deepEqual(done.sort(), ["plan retention db dry-all", "plan retention web dry-all", "retention web real"]);
      assert.equal(events.length, 1);
      assert.equal(events[0]?.type, "failed");
      assert.equal(events[0]?.requestId, "dry-rotate");
      assert.match(events[0]?.reason ?? "", /^rotate has no dry run \(only retention has: vmbs retention --dry-run\); nothing was done$/);
    } finally {
      for (const c of consumers) await c.stop();
    }
  });
});
