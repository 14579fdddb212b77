import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";
import type { JsMsg } from "@nats-io/jetstream";
import type { CommandContext, Disposition } from "./consume-durable.js";
import { commandIdentity, commandOutcomeKey, type CommandOutcomeStore, type CommandRecord } from "./command-outcomes.js";
import type { EventOutbox, OutboxEvent } from "./event-outbox.js";

/** What a journaled handler knows about its command. */
export interface CommandRun {
  key: string;
  identity: string;
  /**
   * Set when an earlier delivery of this command started and never recorded its outcome (its process was
   * killed, or it failed and asked for a retry): the events that delivery announced, in order. The handler
   * decides from them which steps must not be repeated.
   */
  interrupted?: readonly OutboxEvent[];
}

export type JournaledHandler = (msg: JsMsg, ctx: CommandContext, run: CommandRun) => Promise<Disposition>;

export interface CommandJournalOptions {
  host: string;
  store: CommandOutcomeStore;
  outbox: EventOutbox;
  /** This process; a `started` record of another owner was interrupted. Default a fresh UUID. */
  owner?: string;
  /** A redelivery answered from its recorded outcome (nothing was run again). */
  onReplay?: (record: CommandRecord) => void;
}

export interface CommandJournal {
  /** Wraps a handler so that each command runs at most once to its recorded outcome (see createCommandJournal). */
  idempotent(handler: JournaledHandler): (msg: JsMsg, ctx: CommandContext) => Promise<Disposition>;
  /** Announces an event through the outbox; inside a journaled handler it is also recorded with the command. */
  announce(event: OutboxEvent): Promise<void>;
}

interface ActiveRun {
  key: string;
  record: CommandRecord;
  /** Record writes of one run, in order. */
  writes: Promise<void>;
  /** Set once the handler returned: a late event (a timer the handler left) must not rewrite the record. */
  finished: boolean;
}

/**
 * Commands that are never run twice. Before the handler runs, `started` is recorded; every event it announces
 * is appended to the record before it enters the outbox; its disposition is recorded (`done`, fsync'd locally,
 * then KV) before the consumer acks. A redelivery of a `done` command re-announces the recorded events (same
 * message ids, so the stream drops what it already has) and returns the recorded disposition. A redelivery of
 * a `started` command from another owner re-announces what that run announced and runs the handler with
 * `run.interrupted`. A redelivery while the same command still runs here waits for it and is answered from it.
 *
 * The record is reached from the events through AsyncLocalStorage, so chain code deep inside a handler keeps
 * publishing through one `announce` without threading the command through every call.
 */
export function createCommandJournal(o: CommandJournalOptions): CommandJournal {
  const owner = o.owner ?? randomUUID();
  const current = new AsyncLocalStorage<ActiveRun>();
  const inFlight = new Map<string, Promise<unknown>>();

  const announce = async (event: OutboxEvent): Promise<void> => {
    const run = current.getStore();
    if (run && !run.finished) {
      run.record.events.push(event);
      const snapshot = structuredClone(run.record);
      run.writes = run.writes.then(() => o.store.put(run.key, snapshot, false));
      await run.writes;
    }
    await o.outbox.enqueue(event);
  };

  return {
    announce,
    idempotent(handler) {
      return async (msg, ctx) => {
        const identity = commandIdentity(msg);
        const key = commandOutcomeKey(o.host, identity);
        const running = inFlight.get(key);
        if (running) await running.catch(() => undefined);

        const prior = await o.store.get(key);
        for (const event of prior?.events ?? []) await o.outbox.enqueue(event);
        if (prior?.state === "done" && prior.disposition) {
          o.onReplay?.(prior);
          return prior.disposition;
        }
        const record: CommandRecord = {
          identity,
          subject: msg.subject,
          state: "started",
          owner,
          startedAt: new Date().toISOString(),
          events: [...(prior?.events ?? [])],
        };
        await o.store.put(key, record, true);
        const run: CommandRun = { key, identity, interrupted: prior ? prior.events : undefined };
        const active: ActiveRun = { key, record, writes: Promise.resolve(), finished: false };
        const task = current.run(active, () => handler(msg, ctx, run));
        inFlight.set(key, task);
        let disposition: Disposition;
        try {
          disposition = await task;
        } finally {
          active.finished = true;
          inFlight.delete(key);
        }
        await active.writes;
        // A retry leaves the record `started`: the next delivery resumes with what this one announced.
        if (disposition === "retry") return disposition;
        await o.store.put(key, { ...record, state: "done", disposition, doneAt: new Date().toISOString() }, true);
        return disposition;
      };
    },
  };
}
