import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { streams, type BackupFailed } from "@vmbs/contracts";
import type { NatsConnection } from "./connect-bus.js";
import { startBusFixture, type BusFixture } from "./testing/bus-fixture.js";
import { jetStreamSender, type OutboxEvent } from "./event-outbox.js";
import { createBackupEventPublisher, createChainEventPublisher } from "./publish-events.js";

describe("event publishers on a real nats-server", () => {
  let bus: BusFixture;
  let nc: NatsConnection;
  before(async () => {
    bus = await startBusFixture("publish-test");
    nc = bus.nc;
  });
  after(async () => {
    await bus?.stop();
  });

  const last = async (subject: string) => {
    const jsm = await jetstreamManager(nc);
    return (await jsm.streams.getMessage(streams.events, { last_by_subj: subject }))?.json<Record<string, unknown>>();
  };

  it("stores valid events on the contract's subjects with this host, and lets no invalid one leave", async () => {
    // Straight to the stream here; the agent announces through its durable outbox (event-outbox.test.ts).
    const send = jetStreamSender(nc);
    const announce = (event: OutboxEvent) => send(event, 5_000);
    const backup = createBackupEventPublisher(announce, "hv1");
    const chain = createChainEventPublisher(announce, "hv1");
    const failed: BackupFailed = { type: "failed", host: "other", domain: "web", runId: "r1", reason: "disk full", at: "2026-01-01T00:00:00.000Z" };
    await backup(failed);
    const stored = await last("vmbs.evt.backup.hv1.failed");
    assert.equal(stored?.host, "hv1", "the publisher's host wins over the event's");
    assert.equal(stored?.reason, "disk full");
    assert.equal(stored?.bytesWritten, 0, "contract defaults are filled in");

    await chain({ type: "archived", domain: "web", trigger: "command", reason: "rotation" });
    const archived = await last("vmbs.evt.chain.hv1.archived");
    assert.equal(archived?.host, "hv1");
    assert.match(String(archived?.at), /^\d{4}-\d\d-\d\dT/);

    const before = (await (await jetstreamManager(nc)).streams.info(streams.events)).state.messages;
    await assert.rejects(backup({ ...failed, reason: undefined } as unknown as BackupFailed));
    await assert.rejects(chain({ type: "no-such-type", trigger: "x", reason: "y" } as never));
    const afterCount = (await (await jetstreamManager(nc)).streams.info(streams.events)).state.messages;
    assert.equal(afterCount, before, "nothing was stored for the invalid events");
  });
});
