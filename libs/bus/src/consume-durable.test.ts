import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { DeliverPolicy } from "@nats-io/jetstream";
import { streams, subjects } from "@vmbs/contracts";
import type { NatsConnection } from "./connect-bus.js";
import { startBusFixture, type BusFixture } from "./testing/bus-fixture.js";
import { publishJson } from "./publish-json.js";
import { consumeDurable, type Disposition } from "./consume-durable.js";

/** Polls until `check` holds; the consumer delivers asynchronously. */
async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe("a durable consumer of the events stream on a real nats-server", () => {
  let bus: BusFixture;
  let nc: NatsConnection;
  before(async () => {
    bus = await startBusFixture("events-test");
    nc = bus.nc;
  });
  after(async () => {
    await bus?.stop();
  });

  const publish = (host: string, n: number) =>
    publishJson(nc, subjects.evt.backup(host, "completed"), { n });

  it("starts at new events, honours the filter, and resumes a durable after a restart without repeats", async () => {
    await publish("hv1", 0); // before the durable exists: not for a "new" consumer
    const seen: number[] = [];
    const open = () =>
      consumeDurable(nc, {
        stream: streams.events,
        deliverPolicy: DeliverPolicy.New,
        durable: "notifier-test",
        filterSubject: subjects.evt.backupAll("hv1"),
        handler: async (msg) => {
          seen.push((msg.json() as { n: number }).n);
          return "ack";
        },
      });
    let consumer = await open();
    await publish("hv2", 100); // another host: filtered out
    await publish("hv1", 1);
    await publish("hv1", 2);
    await until(() => seen.length >= 2, "events 1 and 2");
    await consumer.stop();

    await publish("hv1", 3); // while stopped: kept for the durable
    consumer = await open();
    await publish("hv1", 4);
    await until(() => seen.length >= 4, "events 3 and 4");
    await sleep(300); // room for a wrong redelivery to show up
    await consumer.stop();
    assert.deepEqual(seen, [1, 2, 3, 4]);
  });

  it("replays history from the start (deliver all), redelivers on retry and drops on term", async () => {
    const host = "hv3";
    await publish(host, 1);
    await publish(host, 2);
    const deliveries: [number, number][] = [];
    const dispositions: Record<number, Disposition[]> = { 1: ["retry", "ack"], 2: ["term"] };
    const consumer = await consumeDurable(nc, {
      stream: streams.events,
      durable: "mirror-test",
      filterSubject: subjects.evt.backupAll(host),
      deliverPolicy: DeliverPolicy.All,
      retryDelayMs: 100,
      handler: async (msg, ctx) => {
        const n = (msg.json() as { n: number }).n;
        deliveries.push([n, ctx.deliveryCount]);
        return dispositions[n]!.shift() ?? "ack";
      },
    });
    try {
      await until(() => deliveries.length >= 3, "three deliveries");
      await sleep(500);
      assert.deepEqual(
        [...deliveries].sort((a, b) => a[0] - b[0] || a[1] - b[1]),
        [[1, 1], [1, 2], [2, 1]],
        "event 1 comes back once after retry; event 2, terminated, never does",
      );
    } finally {
      await consumer.stop();
    }
  });
});
