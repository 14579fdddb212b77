import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { appendFile, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { streams } from "@vmbs/contracts";
import type { NatsConnection } from "./connect-bus.js";
import { startBusFixture, type BusFixture } from "./testing/bus-fixture.js";
import { jetStreamSender, openEventOutbox, type OutboxEvent, type OutboxSender } from "./event-outbox.js";

const ev = (n: number): OutboxEvent => ({ subject: "vmbs.evt.backup.hv1.completed", msgId: `m${n}`, payload: { n } });
/** A sender that stores what it was given, failing while `down` is true, as a publish to a stopped server does. */
function recorder() {
  const sent: string[] = [];
  const state = { down: false, attempts: 0 };
  const send: OutboxSender = async (e) => {
    state.attempts += 1;
    if (state.down) throw new Error("no responders");
    sent.push(e.msgId);
  };
  return { sent, state, send };
}
const fast = { minBackoffMs: 5, maxBackoffMs: 20 };

describe("event outbox on real files", () => {
  let dir: string;
  before(async () => (dir = await mkdtemp(join(tmpdir(), "vmbs-outbox-"))));
  after(async () => rm(dir, { recursive: true, force: true }));
  let n = 0;
  const freshDir = () => join(dir, `o${++n}`);

  it("publishes in order once the sender works again, and keeps order behind a failing event", async () => {
    const d = freshDir();
    const r = recorder();
    r.state.down = true;
    const outbox = await openEventOutbox({ dir: d, send: r.send, ...fast });
    for (const i of [1, 2, 3]) await outbox.enqueue(ev(i));
    await new Promise((res) => setTimeout(res, 100));
    assert.deepEqual(r.sent, [], "nothing is sent while the bus is down");
    assert.ok(r.state.attempts >= 2, "the head event is retried");
    assert.equal(outbox.pending(), 3);
    r.state.down = false;
    assert.equal(await outbox.drain(5_000), true);
    assert.deepEqual(r.sent, ["m1", "m2", "m3"]);
    await outbox.close();
  });

  it("survives a restart: events left unsent are published by the next open, sent ones are not repeated", async () => {
    const d = freshDir();
    const first = recorder();
    const a = await openEventOutbox({ dir: d, send: first.send, ...fast });
    await a.enqueue(ev(1));
    assert.equal(await a.drain(5_000), true);
    first.state.down = true;
    await a.enqueue(ev(2));
    await a.enqueue(ev(3));
    await a.close();
    assert.deepEqual(first.sent, ["m1"]);

    const second = recorder();
    const b = await openEventOutbox({ dir: d, send: second.send, ...fast });
    assert.equal(await b.drain(5_000), true);
    assert.deepEqual(second.sent, ["m2", "m3"], "exactly the unsent events, in order");
    await b.close();
  });

  it("sends an event that finds nothing pending straight to the stream, writing nothing to disk", async () => {
    const d = freshDir();
    const r = recorder();
    const outbox = await openEventOutbox({ dir: d, send: r.send, ...fast });
    await outbox.enqueue(ev(1));
    assert.deepEqual(r.sent, ["m1"], "stored by the time enqueue resolves");
    assert.equal(outbox.pending(), 0);
    assert.equal((await stat(join(d, "outbox.jsonl"))).size, 0, "no fsync'd copy for an event the stream acked");
    // A failed direct attempt falls back to the disk, and what follows queues behind it, in order.
    r.state.down = true;
    await outbox.enqueue(ev(2));
    r.state.down = false;
    await outbox.enqueue(ev(3));
    assert.match(await readFile(join(d, "outbox.jsonl"), "utf8"), /"m2"/);
    assert.equal(await outbox.drain(5_000), true);
    assert.deepEqual(r.sent, ["m1", "m2", "m3"]);
    await outbox.close();
  });

  it("drops a second enqueue of a pending message id", async () => {
    const r = recorder();
    r.state.down = true;
    const outbox = await openEventOutbox({ dir: freshDir(), send: r.send, ...fast });
    await outbox.enqueue(ev(1));
    await outbox.enqueue(ev(1));
    assert.equal(outbox.pending(), 1);
    r.state.down = false;
    await outbox.drain(5_000);
    assert.deepEqual(r.sent, ["m1"]);
    await outbox.close();
  });

  it("compacts: the file holds only unsent events after enough sends", async () => {
    const d = freshDir();
    const r = recorder();
    const outbox = await openEventOutbox({ dir: d, send: r.send, compactAfter: 4, ...fast });
    for (let i = 0; i < 12; i++) await outbox.enqueue(ev(i));
    await outbox.drain(5_000);
    await outbox.close();
    assert.equal(r.sent.length, 12);
    // 12 sends with a rewrite every 4: at most the last few marks are left, never the 12 events.
    const text = await readFile(join(d, "outbox.jsonl"), "utf8");
    assert.ok(!text.includes('"event"'), `sent events were compacted away: ${text}`);
    // And a reopen rewrites the file to its pending events only: here, nothing.
    const again = await openEventOutbox({ dir: d, send: r.send, ...fast });
    assert.equal((await stat(join(d, "outbox.jsonl"))).size, 0);
    assert.equal(again.pending(), 0);
    await again.close();
  });

  it("skips a torn last line left by a crash mid-append, keeping the events before it", async () => {
    const d = freshDir();
    const r = recorder();
    r.state.down = true;
    const a = await openEventOutbox({ dir: d, send: r.send, ...fast });
    await a.enqueue(ev(1));
    await a.close();
    await appendFile(join(d, "outbox.jsonl"), '{"event":{"subject":"vmbs.evt');
    const errors: unknown[] = [];
    const ok = recorder();
    const b = await openEventOutbox({ dir: d, send: ok.send, onError: (err) => errors.push(err), ...fast });
    await b.drain(5_000);
    assert.deepEqual(ok.sent, ["m1"]);
    assert.equal(errors.length, 1, "the torn line is reported");
    await b.close();
  });
});

describe("event outbox into a real JetStream", () => {
  let bus: BusFixture;
  let nc: NatsConnection;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "vmbs-outbox-js-"));
    bus = await startBusFixture("outbox-test");
    nc = bus.nc;
  });
  after(async () => {
    await bus?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("stores a re-announced event once (Nats-Msg-Id dedupe), in enqueue order", async () => {
    const outbox = await openEventOutbox({ dir, send: jetStreamSender(nc), ...fast });
    await outbox.enqueue(ev(1));
    await outbox.enqueue(ev(2));
    assert.equal(await outbox.drain(10_000), true);
    // A redelivered command re-announces what it recorded: same ids, after they were sent.
    await outbox.enqueue(ev(1));
    await outbox.enqueue(ev(2));
    assert.equal(await outbox.drain(10_000), true);
    await outbox.close();
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(streams.events);
    assert.equal(info.state.messages, 2);
    const first = await jsm.streams.getMessage(streams.events, { seq: 1 });
    const second = await jsm.streams.getMessage(streams.events, { seq: 2 });
    assert.ok(first && second);
    assert.deepEqual([first.json<{ n: number }>().n, second.json<{ n: number }>().n], [1, 2]);
    assert.equal(first.header.get("Nats-Msg-Id"), "m1");
  });
});
