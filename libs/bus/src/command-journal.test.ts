import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AckPolicy, jetstream, jetstreamManager, type JsMsg } from "@nats-io/jetstream";
import { streams, subjects } from "@vmbs/contracts";
import type { NatsConnection } from "./connect-bus.js";
import { startBusFixture, type BusFixture } from "./testing/bus-fixture.js";
import { openEventOutbox, type OutboxEvent, type OutboxSender } from "./event-outbox.js";
import { commandIdentity, commandOutcomeKey, openCommandOutcomeStore, openCommandOutcomesBucket, type CommandRecord } from "./command-outcomes.js";
import { createCommandJournal, type CommandRun } from "./command-journal.js";
import type { CommandContext } from "./consume-durable.js";

const ctx: CommandContext = { working: () => undefined, signal: new AbortController().signal, deliveryCount: 1 };

describe("command outcomes and the journal on a real nats-server and real files", () => {
  let bus: BusFixture;
  let dir: string;
  let nc: NatsConnection;
  let n = 0;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "vmbs-journal-"));
    bus = await startBusFixture("journal-test");
    nc = bus.nc;
  });
  after(async () => {
    await bus?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** Publishes a command into VMBS_CMD and fetches it back as a real JetStream message. */
  async function command(body: unknown, msgId?: string): Promise<JsMsg> {
    const subject = subjects.cmd.backup("hv1");
    await jetstream(nc).publish(subject, JSON.stringify(body), msgId ? { msgID: msgId } : undefined);
    const durable = `journal-test-${++n}`;
    const jsm = await jetstreamManager(nc);
    await jsm.consumers.add(streams.commands, { durable_name: durable, ack_policy: AckPolicy.Explicit, filter_subject: subject });
    const consumer = await jetstream(nc).consumers.get(streams.commands, durable);
    const msg = await consumer.next({ expires: 5_000 });
    assert.ok(msg, "the command was fetched");
    await msg.ackAck();
    // A work-queue stream allows one consumer per subject.
    await jsm.consumers.delete(streams.commands, durable);
    return msg;
  }

  const sent: string[] = [];
  const send: OutboxSender = async (e) => void sent.push(e.msgId);
  async function journalIn(sub: string, owner: string) {
    const kv = await openCommandOutcomesBucket(nc);
    const store = await openCommandOutcomeStore({ dir: join(dir, sub, "commands"), kv });
    const outbox = await openEventOutbox({ dir: join(dir, sub), send, minBackoffMs: 5 });
    return { store, outbox, journal: createCommandJournal({ host: "hv1", store, outbox, owner }) };
  }

  it("names a command by Nats-Msg-Id, else by stream, sequence and time", async () => {
    const withId = await command({ n: 1 }, "backup:hv1:abc:slot");
    assert.equal(commandIdentity(withId), "msg-id:backup:hv1:abc:slot");
    const plain = await command({ n: 2 });
    assert.equal(commandIdentity(plain), `seq:${streams.commands}:${plain.info.streamSequence}:${plain.info.timestampNanos}`);
    assert.match(commandOutcomeKey("hv1", commandIdentity(plain)), /^hv1\.[0-9a-f]{32}$/);
  });

  it("runs a command once: a redelivery is answered from the record and re-announces the same events", async () => {
    const { journal, outbox, store } = await journalIn("once", "agent-1");
    let runs = 0;
    const handler = journal.idempotent(async () => {
      runs += 1;
      await journal.announce({ subject: "vmbs.evt.backup.hv1.completed", msgId: "evt-once", payload: { ok: true } });
      return "ack";
    });
    const msg = await command({ domain: "web" }, "once-1");
    assert.equal(await handler(msg, ctx), "ack");
    await outbox.drain(5_000);
    sent.length = 0;
    assert.equal(await handler(msg, ctx), "ack");
    assert.equal(runs, 1, "the handler ran once");
    await outbox.drain(5_000);
    assert.deepEqual(sent, ["evt-once"], "the recorded event is announced again with its id");
    const key = commandOutcomeKey("hv1", commandIdentity(msg));
    const record = await store.get(key);
    assert.equal(record?.state, "done");
    assert.equal(record?.disposition, "ack");
    // The local copy is a file of its own, and KV holds the same record for readers without the state dir.
    assert.ok((await readdir(join(dir, "once", "commands"))).includes(`${key}.json`));
    const elsewhere = await openCommandOutcomeStore({ dir: join(dir, "lost-state"), kv: await openCommandOutcomesBucket(nc) });
    assert.equal((await elsewhere.get(key))?.state, "done");
    await outbox.close();
  });

  it("hands an interrupted run's events to the next delivery, and records `started` before the work", async () => {
    const first = await journalIn("interrupted", "agent-gone");
    const msg = await command({ domain: "db" }, "interrupted-1");
    const key = commandOutcomeKey("hv1", commandIdentity(msg));
    const archived: OutboxEvent = { subject: "vmbs.evt.chain.hv1.archived", msgId: "evt-archived", payload: { domain: "db" } };
    // The first process records `started`, announces an archive, and dies before its outcome (a handler that never ends).
    let seenAtStart: CommandRecord | undefined;
    void first.journal.idempotent(async () => {
      seenAtStart = await first.store.get(key);
      await first.journal.announce(archived);
      return new Promise(() => undefined);
    })(msg, ctx);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(seenAtStart?.state, "started");
    await first.outbox.close();

    const second = await journalIn("interrupted", "agent-new");
    let run: CommandRun | undefined;
    const disposition = await second.journal.idempotent(async (_m, _c, r) => {
      run = r;
      return "ack";
    })(msg, ctx);
    assert.equal(disposition, "ack");
    assert.deepEqual(run?.interrupted, [archived]);
    const done = await second.store.get(key);
    assert.equal(done?.state, "done");
    assert.equal(done?.owner, "agent-new");
    assert.deepEqual(done?.events, [archived], "the events of the interrupted run stay in the record");
    await second.outbox.close();
  });

  it("does not let an event announced after the handler returned rewrite the done record", async () => {
    const { journal, outbox, store } = await journalIn("late", "agent-1");
    const msg = await command({}, "late-1");
    let late: Promise<void> | undefined;
    await journal.idempotent(async () => {
      setTimeout(() => (late = journal.announce({ subject: "vmbs.evt.chain.hv1.checked", msgId: "evt-late", payload: {} })), 20);
      return "ack";
    })(msg, ctx);
    await new Promise((r) => setTimeout(r, 150));
    assert.ok(late, "the late event was announced");
    await late;
    const record = await store.get(commandOutcomeKey("hv1", commandIdentity(msg)));
    assert.equal(record?.state, "done");
    assert.deepEqual(record?.events, []);
    await outbox.close();
  });

  it("leaves a retried command `started`, so its next delivery resumes instead of answering", async () => {
    const { journal, outbox, store } = await journalIn("retry", "agent-1");
    const msg = await command({}, "retry-1");
    let calls = 0;
    const handler = journal.idempotent(async (_m, _c, run) => {
      calls += 1;
      return run.interrupted ? "ack" : "retry";
    });
    assert.equal(await handler(msg, ctx), "retry");
    assert.equal((await store.get(commandOutcomeKey("hv1", commandIdentity(msg))))?.state, "started");
    assert.equal(await handler(msg, ctx), "ack");
    assert.equal(calls, 2);
    await outbox.close();
  });

  it("prunes local records older than the max age at open", async () => {
    const d = join(dir, "prune");
    const store = await openCommandOutcomeStore({ dir: d, maxAgeMs: 60_000 });
    const record: CommandRecord = { identity: "x", subject: "s", state: "done", owner: "o", startedAt: "t", events: [] };
    await store.put("hv1.old", record, false);
    await store.put("hv1.new", record, false);
    const old = new Date(Date.now() - 120_000);
    await utimes(join(d, "hv1.old.json"), old, old);
    await writeFile(join(d, "hv1.torn.json.tmp"), "{");
    const reopened = await openCommandOutcomeStore({ dir: d, maxAgeMs: 60_000 });
    assert.deepEqual((await readdir(d)).sort(), ["hv1.new.json"]);
    assert.equal(await reopened.get("hv1.old"), undefined);
    assert.equal(JSON.parse(await readFile(join(d, "hv1.new.json"), "utf8")).state, "done");
  });
});
